#include "agent/nginx/local_nginx_controller.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/common/units.h"
#include "agent/nginx/nginx_control_client.h"
#include "agent/nginx/nginx_process.h"
#include "agent/nginx/nginx_routes.h"
#include "agent/telemetry/counter_registry.h"

namespace reactor {
namespace fs = std::filesystem;

namespace {

constexpr Duration kTestTimeout{20000};
// A push to a live nginx takes well under a millisecond; a wedged one
// (SIGSTOP, overload) must not hold the loop.
constexpr Duration kControlTimeout{250};
constexpr Duration kControlRetry{1000};
constexpr Duration kStartTimeout{10000};
// A configuration nginx -t refused is tried again after this, in case what
// it refers to (a certificate file, an address) was fixed in the meantime.
constexpr Duration kRefusedRetry{60000};

std::string Trimmed(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Result<std::string> ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path.string(), "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `content` to `path` via a temp file, fsync and rename, so readers see
// the old or the new file, never a partial one.
Status WriteAtomically(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp";
  FILE* f = fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::IOError(tmp.string(), strerror(errno));
  bool ok = fwrite(content.data(), 1, content.size(), f) == content.size();
  ok = fflush(f) == 0 && ok;
  ok = fsync(fileno(f)) == 0 && ok;
  ok = fclose(f) == 0 && ok;
  if (!ok) return Status::IOError(tmp.string(), "write failed");
  if (rename(tmp.c_str(), path.c_str()) != 0) return Status::IOError(path.string(), strerror(errno));
  return Status::Ok();
}

Status WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return Status::IOError(path.string(), "write failed");
  return Status::Ok();
}

std::string LastLines(const std::string& text, size_t n) {
  size_t pos = text.size();
  while (n-- > 0 && pos > 0) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

std::string OneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::set<std::string> ServerKeys(const std::vector<EndpointConfig>& endpoints) {
  std::set<std::string> keys;
  for (const EndpointConfig& e : endpoints) keys.insert(ServerKey(e));
  return keys;
}

// System mode: the main config with every `include` of conf_dir (absolute,
// or relative to the main config's directory) pointed at `candidate_dir`.
// Empty when it includes conf_dir nowhere.
std::string RetargetIncludes(const std::string& main_text, const std::string& main_dir, const std::string& conf_dir,
                             const std::string& candidate_dir) {
  std::vector<std::string> forms = {conf_dir + "/"};
  if (conf_dir.rfind(main_dir + "/", 0) == 0) forms.push_back(conf_dir.substr(main_dir.size() + 1) + "/");
  std::istringstream in(main_text);
  std::string out, line;
  bool found = false;
  while (std::getline(in, line)) {
    size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos && line.compare(start, 8, "include ") == 0) {
      size_t arg = line.find_first_not_of(" \t", start + 8);
      for (const std::string& form : forms) {
        if (arg != std::string::npos && line.compare(arg, form.size(), form) == 0) {
          line = line.substr(0, arg) + candidate_dir + "/" + line.substr(arg + form.size());
          found = true;
          break;
        }
      }
    }
    out += line + "\n";
  }
  return found ? out : std::string();
}

}  // namespace

LocalNginxController::LocalNginxController(NginxSettings settings, EventSink& events, Clock& clock)
    : settings_(std::move(settings)),
      events_(events),
      clock_(clock),
      prefix_(Trimmed(settings_.prefix)),
      control_socket_(ControlSocketPath(prefix_)),
      members_file_(prefix_ + "/members.state"),
      routes_file_(prefix_ + "/routes.state"),
      coalescer_(clock, settings_.reload_delay) {}

LocalNginxController::~LocalNginxController() {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyLocked();
}

std::string LocalNginxController::AccessLogPath() const { return prefix_ + "/logs/access.log"; }

std::string LocalNginxController::PidFile() const {
  return settings_.mode == NginxSettings::Mode::kManaged ? prefix_ + "/logs/nginx.pid" : settings_.system_pid_file;
}

int LocalNginxController::ReloadCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reload_count_;
}

int LocalNginxController::PushCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return push_count_;
}

std::map<std::string, std::string> LocalNginxController::HeldBack() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_back_;
}

pid_t LocalNginxController::MasterPid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return PidLocked();
}

pid_t LocalNginxController::PidLocked() const {
  if (settings_.mode == NginxSettings::Mode::kManaged) return ProcessRunning(nginx_pid_) ? nginx_pid_ : 0;
  pid_t pid = ReadPidFile(PidFile());
  return ProcessRunning(pid) ? pid : 0;
}

Result<std::map<std::string, std::string>> LocalNginxController::RenderEndpointsLocked(
    const NginxTemplates& templates, const std::vector<EndpointConfig>& endpoints) {
  NginxRenderInput in;
  in.mode = settings_.mode;
  in.upstreams = settings_.upstreams;
  in.prefix = prefix_;
  in.access_log = AccessLogPath();
  in.control_socket = control_socket_;
  in.members_file = members_file_;
  in.routes_file = routes_file_;
  in.endpoints = endpoints;
  if (!Dynamic()) in.members = members_;
  return RenderNginxConfig(templates, in);
}

Result<std::map<std::string, std::string>> LocalNginxController::RenderLocked() {
  // Templates are read every time (an edited template_dir takes effect at
  // the next round); the rendering is redone only when an input changed:
  // in dynamic mode only the set of servers shapes it.
  Result<NginxTemplates> templates = LoadNginxTemplates(settings_.template_dir);
  if (!templates.ok()) return templates.status();
  std::set<std::string> servers;
  if (Dynamic()) servers = ServerKeys(endpoints_);
  if (last_rendering_ && last_rendering_->templates == templates.value() &&
      (Dynamic() ? last_rendering_->servers == servers
                 : last_rendering_->endpoints == endpoints_ && last_rendering_->members == members_)) {
    return last_rendering_->files;
  }
  const TimePoint start = clock_.Now();
  Result<std::map<std::string, std::string>> files = RenderEndpointsLocked(templates.value(), endpoints_);
  if (!files.ok()) return files.status();
  Rendering r;
  r.templates = std::move(templates).value();
  if (Dynamic()) {
    r.servers = std::move(servers);
  } else {
    r.endpoints = endpoints_;
    r.members = members_;
  }
  r.files = files.value();
  r.took = std::chrono::duration_cast<Duration>(clock_.Now() - start);
  last_rendering_ = std::move(r);
  return files;
}

void LocalNginxController::LoadLiveLocked() {
  live_files_.clear();
  if (settings_.mode == NginxSettings::Mode::kSystem) {
    Result<std::string> text = ReadAll(fs::path(settings_.conf_dir) / kSystemConfFile);
    if (text.ok()) live_files_[kSystemConfFile] = text.value();
    return;
  }
  std::error_code ec;
  fs::path link = fs::path(prefix_) / "conf";
  fs::path target = fs::read_symlink(link, ec);
  if (ec) return;
  std::string name = target.filename().string();
  if (name.rfind("conf.", 0) == 0) generation_ = std::atoi(name.c_str() + 5);
  for (const char* file : {kMainConfFile, kSitesConfFile}) {
    Result<std::string> text = ReadAll(link / file);
    if (!text.ok()) {
      live_files_.clear();
      return;
    }
    live_files_[file] = text.value();
  }
}

Status LocalNginxController::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  for (const char* dir : {"", "/logs", "/temp", "/control"}) {
    fs::create_directories(prefix_ + dir, ec);
    if (ec) return Status::IOError(prefix_ + dir, ec.message());
  }
  // Workers (nobody when the master is root) reach temp/ through the prefix;
  // the control socket's directory stays private to the agent's user.
  chmod(prefix_.c_str(), 0755);
  chmod((prefix_ + "/temp").c_str(), 0755);
  chmod((prefix_ + "/control").c_str(), 0700);

  Result<std::string> persisted = ReadAll(members_file_);
  if (persisted.ok()) {
    for (auto& [name, list] : ParseMembersFile(persisted.value())) members_.emplace(name, list);
  }
  // Servers an earlier agent pushed routes for: nginx may still have them.
  Result<std::string> routes = ReadAll(routes_file_);
  if (routes.ok()) {
    std::istringstream lines(routes.value());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("server ", 0) == 0) unknown_routes_.insert(line.substr(7));
    }
  }
  LoadLiveLocked();
  if (live_files_.empty()) {
    Status s = ApplyLocked();
    if (!s.ok()) return s.WithContext("initial nginx config");
  }
  started_ = true;
  if (settings_.mode == NginxSettings::Mode::kSystem) {
    RepushAllLocked();
    return Status::Ok();
  }

  pid_t pid = ReadPidFile(PidFile());
  if (pid > 0 && IsNginxWithPrefix(pid, prefix_)) {
    nginx_pid_ = pid;
    events_.Record("", "nginx", "adopted running nginx (pid " + std::to_string(pid) + ")");
    RepushAllLocked();
    return Status::Ok();
  }
  REACTOR_RETURN_IF_ERROR(SpawnLocked());
  RepushAllLocked();
  return Status::Ok();
}

Status LocalNginxController::SpawnLocked() {
  PersistDirtyLocked();             // the new nginx loads the latest lists and routes
  unlink(control_socket_.c_str());  // stale after a crash; nginx would fail to bind it
  const std::string stderr_log = prefix_ + "/logs/nginx.stderr";
  Result<pid_t> child = SpawnDetached(
      {settings_.binary, "-p", prefix_, "-c", prefix_ + "/conf/nginx.conf", "-g", "daemon off;"}, stderr_log);
  if (!child.ok()) return child.status().WithContext("starting nginx");
  const pid_t pid = child.value();
  const int64_t tries = kStartTimeout.count() / 20;
  for (int64_t i = 0; i < tries; ++i) {
    if (ReadPidFile(PidFile()) == pid) {
      nginx_pid_ = pid;
      control_down_ = false;
      events_.Record("", "nginx", "started nginx (pid " + std::to_string(pid) + ")");
      return Status::Ok();
    }
    if (ReapIfExited(pid)) break;
    SleepMs(20);
  }
  if (ProcessRunning(pid)) kill(-pid, SIGKILL);
  ReapIfExited(pid);
  Result<std::string> out = ReadAll(stderr_log);
  Result<std::string> err = ReadAll(prefix_ + "/logs/error.log");
  std::string why =
      OneLine(LastLines(out.ok() ? out.value() : "", 3) + " " + LastLines(err.ok() ? err.value() : "", 3));
  Status s = Status::Unavailable("nginx did not start: " + why);
  events_.Record("", "error", s.message());
  return s;
}

bool LocalNginxController::ControlUsableLocked() const {
  if (!Dynamic() || !started_ || PidLocked() == 0) return false;
  return !control_down_ || clock_.Now() >= control_retry_at_;
}

Status LocalNginxController::PushLocked(const std::function<Status()>& push) {
  if (!ControlUsableLocked()) return Status::Unavailable("nginx control socket: not answering; pushed later");
  Status s = push();
  if (s.ok()) {
    ++push_count_;
    if (control_down_) {
      control_down_ = false;
      events_.Record("", "nginx", "control socket answers again; pushing what waited");
    }
    return s;
  }
  // Only silence stops the pushes: a refusal (HTTP 400) or a refused
  // connect (nginx between configs) costs nothing to try again.
  if (s.code() != Status::Code::kUnavailable) return s;
  if (!control_down_) {
    events_.Record(
        "", "error",
        s.message() + "; pushes wait until nginx answers (tried again every " + FormatDuration(kControlRetry) + ")");
  }
  control_down_ = true;
  control_retry_at_ = clock_.Now() + kControlRetry;
  return s;
}

void LocalNginxController::RepushAllLocked() {
  if (!Dynamic()) return;
  for (const auto& [listen, routes] : pushed_routes_) unknown_routes_.insert(listen);
  pushed_routes_.clear();
  for (const auto& [name, list] : members_) unpushed_members_.insert(name);
  SyncPushesLocked();
}

void LocalNginxController::SyncPushesLocked() {
  if (!Dynamic() || !ControlUsableLocked()) return;
  // Routes first: a new endpoint's route before its members. None before
  // the first ApplySites: until then nginx's (from routes.state) are the
  // best known.
  if (sites_applied_ && !SyncRoutesLocked()) return;
  for (auto it = unpushed_members_.begin(); it != unpushed_members_.end();) {
    auto m = members_.find(*it);
    if (m == members_.end()) {
      it = unpushed_members_.erase(it);
      continue;
    }
    const std::string& name = m->first;
    const std::vector<Member>& list = m->second;
    Status s = PushLocked([&] { return PostMembers(control_socket_, name, list, kControlTimeout); });
    if (!s.ok() && !s.IsInvalidArgument()) return;  // not answering: the rest waits too
    if (!s.ok()) events_.Record(name, "error", s.message());
    it = unpushed_members_.erase(it);
  }
}

bool LocalNginxController::SyncRoutesLocked() {
  // Every server wanted, pushed before, or possibly known to nginx from an
  // earlier agent (those get an empty table unless wanted).
  std::set<std::string> listens = unknown_routes_;
  for (const auto& [listen, routes] : routes_) listens.insert(listen);
  for (const auto& [listen, routes] : pushed_routes_) listens.insert(listen);
  const std::vector<Route> none;
  for (const std::string& listen : listens) {
    auto want = routes_.find(listen);
    const std::vector<Route>& routes = want == routes_.end() ? none : want->second;
    const bool unknown = unknown_routes_.count(listen) > 0;
    auto have = pushed_routes_.find(listen);
    if (!unknown && (have == pushed_routes_.end() ? routes.empty() : have->second == routes)) continue;
    const TimePoint start = clock_.Now();
    Status s = PushLocked([&] { return PostRoutes(control_socket_, listen, routes, kControlTimeout); });
    if (!s.ok() && !s.IsInvalidArgument()) return false;
    if (!s.ok()) {
      events_.Record("", "error", s.message());
      continue;
    }
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now() - start);
    events_.Record("", "routes",
                   "routes of " + listen + " pushed to nginx (" + std::to_string(routes.size()) + " route(s), " +
                       std::to_string(took.count() / 1000) + "." + std::to_string(took.count() / 100 % 10) + " ms)");
    unknown_routes_.erase(listen);
    if (routes.empty()) {
      pushed_routes_.erase(listen);
    } else {
      pushed_routes_[listen] = routes;
    }
  }
  return true;
}

void LocalNginxController::AdmitLocked() {
  // Refusals expire: what nginx -t objected to may have been fixed.
  const TimePoint now = clock_.Now();
  for (auto it = refused_at_.begin(); it != refused_at_.end();) {
    if (now - it->second >= kRefusedRetry) {
      refused_.erase(it->first);
      it = refused_at_.erase(it);
    } else {
      ++it;
    }
  }
  std::set<std::string> wanted_names;
  for (const EndpointConfig& e : wanted_) wanted_names.insert(e.name);
  for (auto it = current_.begin(); it != current_.end();) {
    it = wanted_names.count(it->first) ? std::next(it) : current_.erase(it);
  }
  for (auto it = refused_.begin(); it != refused_.end();) {
    if (wanted_names.count(it->first)) {
      ++it;
    } else {
      refused_at_.erase(it->first);
      it = refused_.erase(it);
    }
  }
  Admission a = AdmitEndpoints(wanted_, current_, refused_);
  for (const auto& [name, why] : a.held_back) {
    auto old = held_back_.find(name);
    if (old == held_back_.end() || old->second != why) events_.Record(name, "nginx", "held back: " + why);
  }
  for (const auto& [name, why] : held_back_) {
    if (!a.held_back.count(name) && wanted_names.count(name)) {
      events_.Record(name, "nginx", "no longer held back");
    }
  }
  held_back_ = std::move(a.held_back);
  endpoints_ = std::move(a.admitted);
  if (!Dynamic()) return;
  // Routes of endpoints on servers nginx has are live once pushed.
  for (const EndpointConfig& e : endpoints_) {
    if (!live_servers_.count(ServerKey(e))) continue;
    auto it = current_.find(e.name);
    if (it == current_.end()) {
      current_.emplace(e.name, e);
    } else if (it->second != e) {
      it->second = e;
    }
  }
  RouteTables routes = BuildRouteTables(endpoints_);
  if (routes != routes_) {
    routes_ = std::move(routes);
    routes_dirty_ = true;
  }
}

Status LocalNginxController::ApplySites(const std::vector<EndpointConfig>& endpoints) {
  std::lock_guard<std::mutex> lock(mu_);
  // The same sites again (most rounds): nothing to admit or render; a
  // refusal that is due for a retry is Flush's.
  if (sites_applied_ && endpoints == wanted_) {
    SyncPushesLocked();
    return Status::Ok();
  }
  wanted_ = endpoints;
  sites_applied_ = true;
  AdmitLocked();
  Status s = NoteChangeLocked();
  SyncPushesLocked();
  return s;
}

Status LocalNginxController::NoteChangeLocked() {
  Result<std::map<std::string, std::string>> files = RenderLocked();
  if (!files.ok()) return files.status();
  if (files.value() == live_files_) {
    coalescer_.Clear();
    live_servers_ = ServerKeys(endpoints_);  // e.g. an adopted nginx that has them
  } else {
    coalescer_.MarkPending();
  }
  return Status::Ok();
}

Status LocalNginxController::SetMembers(const std::string& endpoint, const std::vector<Member>& members) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(CheckEndpointName(endpoint));
  for (const Member& m : members) REACTOR_RETURN_IF_ERROR(CheckMember(m, !Dynamic()).WithContext(endpoint));
  members_[endpoint] = members;
  if (!Dynamic()) return NoteChangeLocked();
  // Written once per Flush: rewriting (and fsyncing) every endpoint's list
  // for each change made a round that changed many endpoints quadratic.
  members_dirty_ = true;
  unpushed_members_.insert(endpoint);
  if (!started_ || PidLocked() == 0) return Status::Ok();  // nginx loads the file when it starts
  // Pushed now when nginx answers; otherwise by a later Flush (or to a
  // restarted nginx): the caller need not try again.
  SyncPushesLocked();
  return Status::Ok();
}

void LocalNginxController::PersistDirtyLocked() {
  std::error_code ec;
  fs::create_directories(prefix_, ec);
  if (members_dirty_) {
    Status s = WriteAtomically(members_file_, EncodeMembersFile(members_));
    if (s.ok()) {
      members_dirty_ = false;
    } else {
      // nginx keeps serving the pushed lists; only a restart would miss them.
      events_.Record("", "error", "saving nginx member lists: " + s.message());
    }
  }
  if (routes_dirty_) {
    Status s = WriteAtomically(routes_file_, EncodeRoutesFile(routes_));
    if (s.ok()) {
      routes_dirty_ = false;
    } else {
      events_.Record("", "error", "saving nginx routes: " + s.message());
    }
  }
}

Status LocalNginxController::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  SyncPushesLocked();
  PersistDirtyLocked();
  RotateLogsLocked();
  if (!refused_at_.empty()) {
    // A refusal that expired is tried again.
    const TimePoint now = clock_.Now();
    for (const auto& [name, at] : refused_at_) {
      if (now - at >= kRefusedRetry) {
        AdmitLocked();
        Status s = NoteChangeLocked();
        if (!s.ok()) return s;
        SyncPushesLocked();
        break;
      }
    }
  }
  if (!coalescer_.Due()) return Status::Ok();
  return ApplyLocked();
}

std::optional<Duration> LocalNginxController::UntilFlushDue() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!coalescer_.pending()) return std::nullopt;
  return coalescer_.UntilDue();
}

Status LocalNginxController::ApplyLocked() {
  coalescer_.Clear();
  Result<std::map<std::string, std::string>> files = RenderLocked();
  if (!files.ok()) {
    events_.Record("", "error", "rendering nginx config: " + files.status().message());
    return files.status();
  }
  if (files.value() == live_files_) return Status::Ok();
  if (files.value() == failed_files_) return last_error_;  // nginx -t already refused exactly this
  Duration render_time = last_rendering_ ? last_rendering_->took : Duration(0);
  const TimePoint install_start = clock_.Now();
  Duration test_time{0};
  Status s = TestCandidateLocked(files.value(), &test_time);
  if (!s.ok() && last_rendering_ && IsolateRefusedLocked(last_rendering_->templates, s, &test_time)) {
    // Apply the rest without the endpoints found at fault.
    AdmitLocked();
    SyncPushesLocked();
    files = RenderLocked();
    if (!files.ok()) return files.status();
    if (files.value() == live_files_) return Status::Ok();
    s = TestCandidateLocked(files.value(), &test_time);
  }
  if (s.ok()) s = InstallCandidateLocked(files.value());
  if (!s.ok()) {
    failed_files_ = files.value();
    last_error_ = s;
    events_.Record("", "error", "nginx config refused, the last good one keeps serving: " + s.message());
    CountEvent("reactor_nginx_reloads_total", {{"result", "failed"}});
    return s;
  }
  live_files_ = std::move(files).value();
  failed_files_.clear();
  last_error_ = Status::Ok();
  live_servers_ = ServerKeys(endpoints_);
  current_.clear();
  live_endpoints_.clear();
  for (const EndpointConfig& e : endpoints_) {
    current_[e.name] = e;
    live_endpoints_[e.name] = e;
  }
  if (!Dynamic()) live_members_ = members_;
  PersistDirtyLocked();  // the reloaded nginx loads the current routes and lists
  const Duration install_time = std::chrono::duration_cast<Duration>(clock_.Now() - install_start) - test_time;
  return ReloadLocked("render " + std::to_string(render_time.count()) + " ms, nginx -t " +
                      std::to_string(test_time.count()) + " ms, write and swap " +
                      std::to_string(install_time.count()) + " ms");
}

bool LocalNginxController::IsolateRefusedLocked(const NginxTemplates& templates, const Status& failure,
                                                Duration* test_time) {
  // Groups that may be at fault: dynamic mode, the endpoints of each server
  // nginx does not have yet (routes cannot fail nginx -t); reload mode,
  // each endpoint whose config or members differ from the live ones.
  std::vector<EndpointConfig> base;
  std::map<std::string, std::vector<EndpointConfig>> by_group;
  for (const EndpointConfig& e : endpoints_) {
    bool changed;
    std::string group;
    if (Dynamic()) {
      group = ServerKey(e);
      changed = !live_servers_.count(group);
    } else {
      group = e.name;
      auto live = live_endpoints_.find(e.name);
      auto m = members_.find(e.name);
      auto lm = live_members_.find(e.name);
      const bool members_same =
          (m == members_.end()) == (lm == live_members_.end()) && (m == members_.end() || m->second == lm->second);
      changed = live == live_endpoints_.end() || live->second != e || !members_same;
    }
    if (changed) {
      by_group[group].push_back(e);
    } else {
      base.push_back(e);
    }
  }
  if (by_group.empty()) return false;
  auto test = [&](const std::vector<EndpointConfig>& eps) -> Status {
    Result<std::map<std::string, std::string>> files = RenderEndpointsLocked(templates, eps);
    if (!files.ok()) return files.status();
    return TestCandidateLocked(files.value(), test_time);
  };
  if (!test(base).ok()) return false;  // not the endpoints' fault (a template, the system config)
  std::vector<std::vector<EndpointConfig>> groups;
  for (auto& [key, eps] : by_group) groups.push_back(std::move(eps));
  std::map<size_t, std::string> bad;
  // REQUIRES: test(base) passed and test(base + groups[lo, hi)) failed with `why`.
  std::function<void(std::vector<EndpointConfig>, size_t, size_t, const Status&)> isolate =
      [&](std::vector<EndpointConfig> ok_base, size_t lo, size_t hi, const Status& why) {
        if (hi - lo == 1) {
          bad[lo] = why.message();
          return;
        }
        const size_t mid = lo + (hi - lo) / 2;
        std::vector<EndpointConfig> left = ok_base;
        for (size_t i = lo; i < mid; ++i) left.insert(left.end(), groups[i].begin(), groups[i].end());
        Status l = test(left);
        if (l.ok()) {
          ok_base = std::move(left);
        } else {
          isolate(ok_base, lo, mid, l);
          for (size_t i = lo; i < mid; ++i) {
            if (!bad.count(i)) ok_base.insert(ok_base.end(), groups[i].begin(), groups[i].end());
          }
        }
        std::vector<EndpointConfig> right = ok_base;
        for (size_t i = mid; i < hi; ++i) right.insert(right.end(), groups[i].begin(), groups[i].end());
        Status r = test(right);
        if (!r.ok()) isolate(ok_base, mid, hi, r);
      };
  isolate(base, 0, groups.size(), failure);
  const TimePoint now = clock_.Now();
  for (const auto& [index, why] : bad) {
    for (const EndpointConfig& e : groups[index]) {
      refused_[e.name] = RefusedEndpoint{e, "nginx -t refused it (the other endpoints were applied): " + why};
      refused_at_[e.name] = now;
    }
  }
  return !bad.empty();
}

Status LocalNginxController::TestCandidateLocked(const std::map<std::string, std::string>& files, Duration* test_time) {
  const fs::path prefix(prefix_);
  const fs::path staging = prefix / "conf.new";
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return Status::IOError(staging.string(), ec.message());
  for (const auto& [name, content] : files) REACTOR_RETURN_IF_ERROR(WriteFile(staging / name, content));

  std::vector<std::string> argv = {settings_.binary, "-t", "-q"};
  fs::path candidate_main;
  if (settings_.mode == NginxSettings::Mode::kManaged) {
    argv.insert(argv.end(), {"-p", prefix_, "-c", (staging / kMainConfFile).string()});
  } else {
    // The system's main config, its include of conf_dir pointed at a copy of
    // conf_dir with the candidate in it; written beside the original so its
    // relative includes resolve the same.
    const fs::path main =
        settings_.system_conf.empty() ? fs::path("/etc/nginx/nginx.conf") : fs::path(settings_.system_conf);
    Result<std::string> main_text = ReadAll(main);
    if (!main_text.ok()) return main_text.status().WithContext("system nginx config");
    const fs::path conf_dir = fs::path(Trimmed(settings_.conf_dir));
    for (const fs::directory_entry& entry : fs::directory_iterator(conf_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name == kSystemConfFile || name.empty() || name[0] == '.' || !entry.is_regular_file(ec)) continue;
      fs::copy_file(entry.path(), staging / name, fs::copy_options::overwrite_existing, ec);
    }
    std::string retargeted =
        RetargetIncludes(main_text.value(), Trimmed(main.parent_path().string()), conf_dir.string(), staging.string());
    if (retargeted.empty()) {
      return Status::InvalidArgument("system nginx config " + main.string() + " includes nothing from conf_dir " +
                                     conf_dir.string() + ": reactor.conf cannot be tested before it goes live");
    }
    candidate_main = main.parent_path() / ".reactor-candidate.conf";
    REACTOR_RETURN_IF_ERROR(WriteFile(candidate_main, retargeted));
    argv.insert(argv.end(), {"-c", candidate_main.string()});
  }
  const TimePoint test_start = clock_.Now();
  Result<CommandResult> test = RunCommand(argv, kTestTimeout);
  *test_time += std::chrono::duration_cast<Duration>(clock_.Now() - test_start);
  if (!candidate_main.empty()) fs::remove(candidate_main, ec);
  if (!test.ok()) return test.status().WithContext("nginx -t");
  if (test->exit_code != 0) return Status::InvalidArgument("nginx -t: " + OneLine(test->output));
  return Status::Ok();
}

Status LocalNginxController::InstallCandidateLocked(const std::map<std::string, std::string>& files) {
  const fs::path prefix(prefix_);
  const fs::path staging = prefix / "conf.new";
  std::error_code ec;
  if (settings_.mode == NginxSettings::Mode::kSystem) {
    const fs::path live = fs::path(settings_.conf_dir) / kSystemConfFile;
    Result<std::string> old = ReadAll(live);
    // conf_dir is included as *.conf: the hidden temp name is not picked up.
    const fs::path staged = fs::path(settings_.conf_dir) / ".reactor.conf.new";
    REACTOR_RETURN_IF_ERROR(WriteAtomically(staged, files.at(kSystemConfFile)));
    if (rename(staged.c_str(), live.c_str()) != 0) {
      Status s = Status::IOError(live.string(), strerror(errno));
      unlink(staged.c_str());
      return s;
    }
    fs::remove_all(staging, ec);
    if (old.ok()) {
      fs::create_directories(prefix / "conf.last-good", ec);
      WriteFile(prefix / "conf.last-good" / kSystemConfFile, old.value());
    }
    return Status::Ok();
  }
  // Move the tested tree into place and flip the `conf` symlink with rename(2).
  const std::string name = "conf." + std::to_string(generation_ + 1);
  fs::remove_all(prefix / name, ec);
  fs::rename(staging, prefix / name, ec);
  if (ec) return Status::IOError((prefix / name).string(), ec.message());
  const fs::path link = prefix / "conf";
  const fs::path old_target = fs::read_symlink(link, ec);
  if (ec && fs::is_directory(link)) {  // a plain directory from an older layout
    fs::remove_all(prefix / "conf.last-good", ec);
    fs::rename(link, prefix / "conf.last-good", ec);
  }
  const fs::path tmp_link = prefix / "conf.tmp";
  fs::remove(tmp_link, ec);
  fs::create_symlink(name, tmp_link, ec);
  if (ec) return Status::IOError(tmp_link.string(), ec.message());
  if (rename(tmp_link.c_str(), link.c_str()) != 0) return Status::IOError(link.string(), strerror(errno));
  ++generation_;
  if (!old_target.empty() && old_target.string() != name) {
    fs::remove_all(prefix / "conf.last-good", ec);
    fs::rename(prefix / old_target, prefix / "conf.last-good", ec);
  }
  (void)files;
  return Status::Ok();
}

Status LocalNginxController::ReloadLocked(const std::string& timings) {
  pid_t pid = PidLocked();
  if (pid == 0) {
    // Managed: nginx is not running yet (Start) or died (Supervise restarts
    // it with the new tree). System: nothing to reload.
    return settings_.mode == NginxSettings::Mode::kManaged
               ? Status::Ok()
               : Status::Unavailable("system nginx is not running (no live pid in " + PidFile() + ")");
  }
  if (kill(pid, SIGHUP) != 0) {
    return Status::Unavailable("reload nginx (pid " + std::to_string(pid) + "): " + strerror(errno));
  }
  ++reload_count_;
  CountEvent("reactor_nginx_reloads_total", {{"result", "ok"}});
  events_.Record("", "reload",
                 "nginx reloaded (config generation " + std::to_string(generation_) + "; " + timings + ")");
  return Status::Ok();
}

void LocalNginxController::RotateLogsLocked() {
  if (settings_.log_max_bytes <= 0) return;
  std::vector<std::string> logs = {AccessLogPath()};
  if (settings_.mode == NginxSettings::Mode::kManaged) logs.push_back(prefix_ + "/logs/error.log");
  bool rotated = false;
  for (const std::string& log : logs) {
    struct stat st {};
    if (stat(log.c_str(), &st) != 0 || st.st_size <= settings_.log_max_bytes) continue;
    // One old generation is kept: the tailer reads what nginx wrote to the
    // renamed file before it reopened (it follows the inode).
    const std::string old = log + ".1";
    if (rename(log.c_str(), old.c_str()) != 0) {
      events_.Record("", "error", "rotating " + log + ": " + strerror(errno));
      continue;
    }
    rotated = true;
  }
  if (!rotated) return;
  const pid_t pid = PidLocked();
  // SIGUSR1 is `nginx -s reopen`: the master reopens the logs (as its user)
  // and tells the workers to.
  if (pid > 0 && kill(pid, SIGUSR1) != 0) {
    events_.Record("", "error", "nginx reopen (pid " + std::to_string(pid) + "): " + strerror(errno));
    return;
  }
  events_.Record("", "nginx",
                 "rotated nginx logs larger than " + std::to_string(settings_.log_max_bytes) +
                     " bytes (kept as *.1; nginx reopened them)");
}

Status LocalNginxController::Supervise() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || settings_.mode != NginxSettings::Mode::kManaged) return Status::Ok();
  const pid_t pid = nginx_pid_;
  ReapIfExited(pid);
  if (ProcessRunning(pid)) return Status::Ok();
  events_.Record("", "nginx", "nginx (pid " + std::to_string(pid) + ") is gone; restarting it");
  // Workers of a killed master keep their listening sockets: end them. They
  // are in the master's process group (it was started in a session of its own).
  if (pid > 0 && kill(-pid, 0) == 0) {
    kill(-pid, SIGKILL);
    for (int i = 0; i < 100 && kill(-pid, 0) == 0; ++i) SleepMs(20);
  }
  nginx_pid_ = 0;
  REACTOR_RETURN_IF_ERROR(SpawnLocked());
  // It loaded the persisted state; push everything anyway (the files are
  // written once per Flush, pushes since then would be missing).
  RepushAllLocked();
  return Status::Ok();
}

void LocalNginxController::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyLocked();
  // Nothing to undo: nginx runs in its own session and keeps serving.
  started_ = false;
}

Status LocalNginxController::Stop(Duration timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyLocked();
  if (settings_.mode != NginxSettings::Mode::kManaged) return Status::Ok();  // the system's nginx is not ours
  pid_t pid = nginx_pid_ > 0 ? nginx_pid_ : ReadPidFile(PidFile());
  nginx_pid_ = 0;
  started_ = false;
  if (pid <= 0 || !IsNginxWithPrefix(pid, prefix_)) {
    ReapIfExited(pid);
    return Status::Ok();
  }
  kill(pid, SIGQUIT);
  for (int64_t waited = 0; waited < timeout.count(); waited += 20) {
    ReapIfExited(pid);
    if (!ProcessRunning(pid)) break;
    SleepMs(20);
  }
  if (kill(-pid, 0) == 0) kill(-pid, SIGKILL);
  for (int i = 0; i < 100; ++i) {
    ReapIfExited(pid);
    if (!ProcessRunning(pid)) return Status::Ok();
    SleepMs(20);
  }
  return Status::Unavailable("nginx (pid " + std::to_string(pid) + ") did not stop");
}

}  // namespace reactor
