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

#include "agent/nginx/nginx_control_client.h"
#include "agent/nginx/nginx_process.h"
#include "agent/telemetry/counter_registry.h"

namespace reactor {
namespace fs = std::filesystem;

namespace {

constexpr Duration kTestTimeout{30000};
constexpr Duration kControlTimeout{3000};
constexpr Duration kStartTimeout{10000};

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

}  // namespace

LocalNginxController::LocalNginxController(NginxSettings settings, EventSink& events, Clock& clock)
    : settings_(std::move(settings)),
      events_(events),
      clock_(clock),
      prefix_(Trimmed(settings_.prefix)),
      control_socket_(prefix_ + "/control/control.sock"),
      members_file_(prefix_ + "/members.state"),
      coalescer_(clock, settings_.reload_delay) {}

LocalNginxController::~LocalNginxController() {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyMembersLocked();
}

std::string LocalNginxController::AccessLogPath() const { return prefix_ + "/logs/access.log"; }

std::string LocalNginxController::PidFile() const {
  return settings_.mode == NginxSettings::Mode::kManaged ? prefix_ + "/logs/nginx.pid" : settings_.system_pid_file;
}

int LocalNginxController::ReloadCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reload_count_;
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

Result<std::map<std::string, std::string>> LocalNginxController::RenderLocked() {
  // Templates are read every time (an edited template_dir takes effect at
  // the next round); the rendering is redone only when an input changed.
  Result<NginxTemplates> templates = LoadNginxTemplates(settings_.template_dir);
  if (!templates.ok()) return templates.status();
  const bool reload_mode = settings_.upstreams == NginxSettings::Upstreams::kReload;
  if (last_rendering_ && last_rendering_->templates == templates.value() && last_rendering_->endpoints == endpoints_ &&
      (!reload_mode || last_rendering_->members == members_)) {
    return last_rendering_->files;
  }
  const TimePoint start = clock_.Now();
  NginxRenderInput in;
  in.mode = settings_.mode;
  in.upstreams = settings_.upstreams;
  in.prefix = prefix_;
  in.access_log = AccessLogPath();
  in.control_socket = control_socket_;
  in.members_file = members_file_;
  in.endpoints = endpoints_;
  if (reload_mode) in.members = members_;
  Result<std::map<std::string, std::string>> files = RenderNginxConfig(templates.value(), in);
  if (!files.ok()) return files.status();
  last_rendering_ = Rendering{std::move(templates).value(), endpoints_, reload_mode ? members_ : MemberLists{},
                              files.value(), clock_.Now() - start};
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
  LoadLiveLocked();
  if (live_files_.empty()) {
    Status s = ApplyLocked();
    if (!s.ok()) return s.WithContext("initial nginx config");
  }
  started_ = true;
  if (settings_.mode == NginxSettings::Mode::kSystem) return Status::Ok();

  pid_t pid = ReadPidFile(PidFile());
  if (pid > 0 && IsNginxWithPrefix(pid, prefix_)) {
    nginx_pid_ = pid;
    events_.Record("", "nginx", "adopted running nginx (pid " + std::to_string(pid) + ")");
    return Status::Ok();
  }
  REACTOR_RETURN_IF_ERROR(SpawnLocked());
  return RepushMembersLocked();
}

Status LocalNginxController::SpawnLocked() {
  PersistDirtyMembersLocked();  // the new nginx loads the latest lists
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
  std::string why = OneLine(LastLines(out.ok() ? out.value() : "", 3) + " " +
                            LastLines(err.ok() ? err.value() : "", 3));
  Status s = Status::Unavailable("nginx did not start: " + why);
  events_.Record("", "error", s.message());
  return s;
}

Status LocalNginxController::RepushMembersLocked() {
  if (settings_.upstreams != NginxSettings::Upstreams::kDynamic || PidLocked() == 0) return Status::Ok();
  Status first;
  for (const auto& [name, list] : members_) {
    Status s = PostMembers(control_socket_, name, list, kControlTimeout);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status LocalNginxController::ApplySites(const std::vector<EndpointConfig>& endpoints) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EndpointConfig> previous = std::move(endpoints_);
  endpoints_ = endpoints;
  Status s = NoteChangeLocked();
  if (!s.ok()) endpoints_ = std::move(previous);  // refused: nothing changes
  return s;
}

Status LocalNginxController::NoteChangeLocked() {
  Result<std::map<std::string, std::string>> files = RenderLocked();
  if (!files.ok()) return files.status();
  if (files.value() == live_files_) {
    coalescer_.Clear();
  } else {
    coalescer_.MarkPending();
  }
  return Status::Ok();
}

Status LocalNginxController::SetMembers(const std::string& endpoint, const std::vector<Member>& members) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(CheckEndpointName(endpoint));
  const bool dynamic = settings_.upstreams == NginxSettings::Upstreams::kDynamic;
  for (const Member& m : members) REACTOR_RETURN_IF_ERROR(CheckMember(m, !dynamic).WithContext(endpoint));
  if (!dynamic) {
    members_[endpoint] = members;
    return NoteChangeLocked();
  }
  members_[endpoint] = members;
  // Written once per Flush: rewriting (and fsyncing) every endpoint's list
  // for each change made a round that changed many endpoints quadratic.
  members_dirty_ = true;
  if (!started_ || PidLocked() == 0) return Status::Ok();  // nginx loads the file when it starts
  return PostMembers(control_socket_, endpoint, members, kControlTimeout);
}

void LocalNginxController::PersistDirtyMembersLocked() {
  if (!members_dirty_) return;
  std::error_code ec;
  fs::create_directories(prefix_, ec);
  Status s = WriteAtomically(members_file_, EncodeMembersFile(members_));
  if (s.ok()) {
    members_dirty_ = false;
  } else {
    // nginx keeps serving the pushed lists; only a restart would miss them.
    events_.Record("", "error", "saving nginx member lists: " + s.message());
  }
}

Status LocalNginxController::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyMembersLocked();
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
  const Duration render_time = last_rendering_ ? last_rendering_->took : Duration(0);
  const TimePoint install_start = clock_.Now();
  Duration test_time{0};
  Status s = settings_.mode == NginxSettings::Mode::kManaged ? InstallManagedLocked(files.value(), &test_time)
                                                               : InstallSystemLocked(files.value(), &test_time);
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
  const Duration install_time = std::chrono::duration_cast<Duration>(clock_.Now() - install_start) - test_time;
  return ReloadLocked("render " + std::to_string(render_time.count()) + " ms, nginx -t " +
                      std::to_string(test_time.count()) + " ms, write and swap " +
                      std::to_string(install_time.count()) + " ms");
}

Status LocalNginxController::InstallManagedLocked(const std::map<std::string, std::string>& files,
                                                  Duration* test_time) {
  const fs::path prefix(prefix_);
  const fs::path staging = prefix / "conf.new";
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return Status::IOError(staging.string(), ec.message());
  for (const auto& [name, content] : files) REACTOR_RETURN_IF_ERROR(WriteFile(staging / name, content));

  const TimePoint test_start = clock_.Now();
  Result<CommandResult> test = RunCommand(
      {settings_.binary, "-t", "-q", "-p", prefix_, "-c", (staging / kMainConfFile).string()}, kTestTimeout);
  *test_time = std::chrono::duration_cast<Duration>(clock_.Now() - test_start);
  if (!test.ok()) return test.status().WithContext("nginx -t");
  if (test->exit_code != 0) return Status::InvalidArgument("nginx -t: " + OneLine(test->output));

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
  return Status::Ok();
}

Status LocalNginxController::InstallSystemLocked(const std::map<std::string, std::string>& files,
                                                 Duration* test_time) {
  const fs::path live = fs::path(settings_.conf_dir) / kSystemConfFile;
  Result<std::string> old = ReadAll(live);
  // conf_dir is included as *.conf: the hidden temp name is not picked up.
  const fs::path staged = fs::path(settings_.conf_dir) / ".reactor.conf.new";
  REACTOR_RETURN_IF_ERROR(WriteFile(staged, files.at(kSystemConfFile)));
  if (rename(staged.c_str(), live.c_str()) != 0) return Status::IOError(live.string(), strerror(errno));

  std::vector<std::string> argv = {settings_.binary, "-t", "-q"};
  if (!settings_.system_conf.empty()) {
    argv.push_back("-c");
    argv.push_back(settings_.system_conf);
  }
  const TimePoint test_start = clock_.Now();
  Result<CommandResult> test = RunCommand(argv, kTestTimeout);
  *test_time = std::chrono::duration_cast<Duration>(clock_.Now() - test_start);
  if (!test.ok() || test->exit_code != 0) {
    // Put the previous file back before anyone reloads.
    if (old.ok()) {
      REACTOR_RETURN_IF_ERROR(WriteFile(staged, old.value()));
      rename(staged.c_str(), live.c_str());
    } else {
      unlink(live.c_str());
    }
    if (!test.ok()) return test.status().WithContext("nginx -t");
    return Status::InvalidArgument("nginx -t: " + OneLine(test->output));
  }
  if (old.ok()) {
    std::error_code ec;
    fs::create_directories(fs::path(prefix_) / "conf.last-good", ec);
    WriteFile(fs::path(prefix_) / "conf.last-good" / kSystemConfFile, old.value());
  }
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
  return RepushMembersLocked();
}

void LocalNginxController::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyMembersLocked();
  // Nothing to undo: nginx runs in its own session and keeps serving.
  started_ = false;
}

Status LocalNginxController::Stop(Duration timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  PersistDirtyMembersLocked();
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
