#include "agent/cloud/process_cloud.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <thread>

#include <boost/filesystem.hpp>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "agent/cloud/command_line.h"
#include "agent/metrics/tcp_table.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace reactor {

namespace bp = boost::process;
using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------
// /proc

struct ProcStat {
  char state = '?';
  pid_t pgrp = 0;
  unsigned long long start_time = 0;
};

/// Reads /proc/<pid>/stat. False when the process does not exist.
bool ReadProcStat(pid_t pid, ProcStat* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  // The command name (field 2) may hold spaces and parentheses: fields after
  // it start after the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 1));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  std::string tok;
  while (f.size() < 20 && fields >> tok) f.push_back(tok);
  if (f.size() < 20) return false;
  out->state = f[0].empty() ? '?' : f[0][0];
  out->pgrp = static_cast<pid_t>(std::strtol(f[2].c_str(), nullptr, 10));
  out->start_time = std::strtoull(f[19].c_str(), nullptr, 10);  // field 22
  return true;
}

/// True while a process that is not a zombie is in process group `pgid`.
bool GroupAlive(pid_t pgid) {
  if (::kill(-pgid, 0) == -1 && errno == ESRCH) return false;
  // kill() also counts zombies; look for a live member.
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return true;
  bool alive = false;
  while (struct dirent* ent = ::readdir(dir)) {
    if (ent->d_name[0] < '0' || ent->d_name[0] > '9') continue;
    ProcStat st;
    const pid_t pid = static_cast<pid_t>(std::strtol(ent->d_name, nullptr, 10));
    if (ReadProcStat(pid, &st) && st.pgrp == pgid && st.state != 'Z' && st.state != 'X') {
      alive = true;
      break;
    }
  }
  ::closedir(dir);
  return alive;
}

// ---------------------------------------------------------------------------
// Children of this OS process. Process-wide because pids are: any
// ProcessCloud in this process may reap a child another one started.

enum class ReapResult { kNotOurs, kRunning, kExited };

class ChildRegistry {
 public:
  static ChildRegistry& Get() {
    static ChildRegistry* registry = new ChildRegistry();
    return *registry;
  }

  void Add(pid_t pid, unsigned long long start_time) {
    std::lock_guard<std::mutex> lock(mu_);
    children_[pid] = start_time;
  }

  /// Reaps `pid` if it is an exited child of ours started at `start_time`.
  /// With `kill_remnants`, whatever is left of its process group gets
  /// SIGKILL first — while the zombie still holds the pid, so the group
  /// cannot be anyone else's.
  ReapResult TryReap(pid_t pid, unsigned long long start_time, bool kill_remnants, int* status) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(pid);
    if (it == children_.end()) return ReapResult::kNotOurs;
    if (it->second != start_time) return ReapResult::kNotOurs;
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == -1) {
      if (errno == ECHILD) {  // reaped elsewhere (e.g. SIGCHLD ignored)
        children_.erase(it);
        return ReapResult::kNotOurs;
      }
      return ReapResult::kRunning;
    }
    if (info.si_pid == 0) return ReapResult::kRunning;
    if (kill_remnants) ::kill(-pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) == -1 && errno == EINTR) {
    }
    children_.erase(it);
    if (status != nullptr) *status = st;
    return ReapResult::kExited;
  }

 private:
  std::mutex mu_;
  std::map<pid_t, unsigned long long> children_;  // GUARDED_BY(mu_)
};

void DescribeWaitStatus(int status, int* exit_code, std::string* detail) {
  if (WIFEXITED(status)) {
    *exit_code = WEXITSTATUS(status);
    *detail = "exited with code " + std::to_string(*exit_code);
  } else if (WIFSIGNALED(status)) {
    *exit_code = 128 + WTERMSIG(status);
    *detail = "killed by signal " + std::to_string(WTERMSIG(status));
  } else {
    *exit_code = -1;
    *detail = "ended with wait status " + std::to_string(status);
  }
}

// ---------------------------------------------------------------------------
// Launch helpers

bool ValidInstanceId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool ValidEndpointName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; });
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

/// argv[0] as an absolute or working-dir-relative path, or "" if not found.
std::string ResolveProgram(const std::string& program, const std::string& path_var, const std::string& working_dir) {
  if (program.find('/') != std::string::npos) {
    std::string full = program;
    if (program[0] != '/' && !working_dir.empty()) full = working_dir + "/" + program;
    return IsExecutableFile(full) ? full : "";
  }
  size_t begin = 0;
  while (begin <= path_var.size()) {
    size_t end = path_var.find(':', begin);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    if (IsExecutableFile(candidate)) return candidate;
    begin = end + 1;
  }
  return "";
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

json RecordToJson(const ProcessRecord& r) {
  return json{{"instance_id", r.instance_id},
              {"endpoint", r.endpoint},
              {"manager", r.manager},
              {"pid", r.pid},
              {"start_time", r.start_time},
              {"port", r.port},
              {"address", r.address},
              {"argv", r.argv},
              {"command", r.command},
              {"log_file", r.log_file},
              {"started_at_ms", r.started_at_ms},
              {"exited", r.exited},
              {"exit_code", r.exit_code},
              {"exit_detail", r.exit_detail}};
}

Result<ProcessRecord> RecordFromJson(const std::string& text) {
  try {
    const json j = json::parse(text);
    ProcessRecord r;
    r.instance_id = j.at("instance_id").get<std::string>();
    r.endpoint = j.at("endpoint").get<std::string>();
    r.manager = j.at("manager").get<std::string>();
    r.pid = j.at("pid").get<pid_t>();
    r.start_time = j.at("start_time").get<unsigned long long>();
    r.port = j.at("port").get<int>();
    r.address = j.at("address").get<std::string>();
    r.argv = j.value("argv", std::vector<std::string>{});
    r.command = j.value("command", "");
    r.log_file = j.value("log_file", "");
    r.started_at_ms = j.value("started_at_ms", int64_t{0});
    r.exited = j.value("exited", false);
    r.exit_code = j.value("exit_code", -1);
    r.exit_detail = j.value("exit_detail", "");
    if (r.pid <= 1) return Status::Internal("bad pid " + std::to_string(r.pid));
    return r;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("bad instance record: ") + e.what());
  }
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------

ProcessCloud::ProcessCloud(ProcessCloudSettings settings, EventSink& events, Clock& clock)
    : settings_(std::move(settings)), events_(events), clock_(clock), next_port_(settings_.port_range.lo) {}

std::string ProcessCloud::RecordPath(const std::string& instance_id) const {
  return settings_.state_dir + "/" + instance_id + ".json";
}

Status ProcessCloud::WriteRecord(const ProcessRecord& record) const {
  const std::string path = RecordPath(record.instance_id);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const std::string text = RecordToJson(record).dump(2) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp, std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError(tmp, why);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::IOError(tmp, why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::IOError(path, why);
  }
  return Status::Ok();
}

Result<ProcessRecord> ProcessCloud::ReadRecord(const std::string& instance_id) const {
  if (!ValidInstanceId(instance_id)) return Status::NotFound("no process instance " + instance_id);
  const std::string path = RecordPath(instance_id);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound("no process instance " + instance_id);
    return Status::IOError(path, std::strerror(errno));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  auto record = RecordFromJson(buf.str());
  if (!record.ok()) return record.status().WithContext(path);
  return record;
}

Result<std::vector<ProcessRecord>> ProcessCloud::ReadAllRecords() const {
  std::vector<ProcessRecord> records;
  DIR* dir = ::opendir(settings_.state_dir.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return records;  // nothing launched yet
    return Status::IOError(settings_.state_dir, std::strerror(errno));
  }
  std::vector<std::string> ids;
  while (struct dirent* ent = ::readdir(dir)) {
    const std::string name = ent->d_name;
    if (!EndsWith(name, ".json")) continue;
    ids.push_back(name.substr(0, name.size() - 5));
  }
  ::closedir(dir);
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) {
    auto record = ReadRecord(id);
    if (!record.ok()) {
      if (!record.status().IsNotFound()) spdlog::warn("process cloud: skipping {}", record.status().ToString());
      continue;
    }
    records.push_back(std::move(*record));
  }
  return records;
}

void ProcessCloud::Refresh(ProcessRecord& record) {
  if (record.exited || stopping_.count(record.instance_id) > 0) return;
  int status = 0;
  switch (ChildRegistry::Get().TryReap(record.pid, record.start_time, /*kill_remnants=*/true, &status)) {
    case ReapResult::kRunning: return;
    case ReapResult::kExited: DescribeWaitStatus(status, &record.exit_code, &record.exit_detail); break;
    case ReapResult::kNotOurs: {
      ProcStat st;
      if (!ReadProcStat(record.pid, &st)) {
        record.exit_detail = "process " + std::to_string(record.pid) + " is gone";
      } else if (st.start_time != record.start_time) {
        record.exit_detail =
            "process " + std::to_string(record.pid) + " is gone (the pid now belongs to another process)";
      } else if (st.state == 'Z' || st.state == 'X') {
        record.exit_detail = "process " + std::to_string(record.pid) + " exited";
      } else {
        return;  // still running: adopted or started by another ProcessCloud
      }
      record.exit_code = -1;
      break;
    }
  }
  record.exited = true;
  events_.Record(record.endpoint, "exit", "instance " + record.instance_id + " " + record.exit_detail);
  Status st = WriteRecord(record);
  if (!st.ok()) spdlog::warn("process cloud: cannot update record: {}", st.ToString());
}

InstanceInfo ProcessCloud::ToInfo(const ProcessRecord& record) const {
  InstanceInfo info;
  info.instance_id = record.instance_id;
  info.endpoint = record.endpoint;
  info.address = record.address;
  info.running = !record.exited;
  info.exit_code = record.exited ? record.exit_code : -1;
  if (record.exited) {
    info.detail = record.exit_detail;
  } else if (stopping_.count(record.instance_id) > 0) {
    info.detail = "pid " + std::to_string(record.pid) + ", stopping";
  } else {
    info.detail = "pid " + std::to_string(record.pid);
  }
  return info;
}

Result<int> ProcessCloud::PickPort(const std::vector<ProcessRecord>& records) {
  const int lo = settings_.port_range.lo;
  const int hi = settings_.port_range.hi;
  if (lo < 1 || hi > 65535 || lo > hi) {
    return Status::InvalidArgument("bad port range " + std::to_string(lo) + "-" + std::to_string(hi));
  }
  std::set<int> taken = ListeningPorts();
  for (const ProcessRecord& r : records) taken.insert(r.port);
  const int span = hi - lo + 1;
  if (next_port_ < lo || next_port_ > hi) next_port_ = lo;
  for (int i = 0; i < span; ++i) {
    const int port = lo + (next_port_ - lo + i) % span;
    if (taken.count(port) > 0 || !CanBindTcp(settings_.address, port)) continue;
    next_port_ = port == hi ? lo : port + 1;
    return port;
  }
  return Status::Unavailable("no free port in " + std::to_string(lo) + "-" + std::to_string(hi));
}

Result<InstanceInfo> ProcessCloud::Launch(const LaunchRequest& req) {
  if (req.endpoint == nullptr) return Status::InvalidArgument("launch without an endpoint");
  const EndpointConfig& ep = *req.endpoint;
  const ProcessConfig& pc = ep.process;
  if (!ValidInstanceId(req.instance_id)) {
    return Status::InvalidArgument("bad instance id '" + req.instance_id + "': use [a-z0-9-]");
  }
  if (!ValidEndpointName(ep.name)) return Status::InvalidArgument("bad endpoint name '" + ep.name + "'");
  // Fail on a malformed command before taking a port.
  if (auto words = SplitCommandLine(pc.command); !words.ok()) {
    return words.status().WithContext("[cloud:process] command");
  }
  if (!pc.working_dir.empty()) {
    struct stat st;
    if (::stat(pc.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument("[cloud:process] working_dir " + pc.working_dir + " is not a directory");
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto records = ReadAllRecords();
  if (!records.ok()) return records.status();
  for (const ProcessRecord& r : *records) {
    if (r.instance_id == req.instance_id) return Status::Conflict("instance " + req.instance_id + " exists");
  }
  auto port = PickPort(*records);
  if (!port.ok()) return port.status();

  const std::map<std::string, std::string> vars = {{"PORT", std::to_string(*port)},
                                                   {"ADDRESS", settings_.address},
                                                   {"NAME", req.instance_id},
                                                   {"ENDPOINT", ep.name}};
  auto argv = BuildArgv(pc.command, vars);
  if (!argv.ok()) return argv.status().WithContext("[cloud:process] command");

  bp::environment env = boost::this_process::environment();
  // What belongs to the agent alone: systemd's notify/watchdog and socket
  // activation hand-offs, and the CLI's credentials.
  for (const char* own : {"NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID",
                          "LISTEN_FDNAMES", "REACTOR_TOKEN"}) {
    env.erase(own);
  }
  std::string path_var;
  if (const char* p = ::getenv("PATH"); p != nullptr) path_var = p;
  for (const auto& [key, value] : pc.environment) {
    const std::string expanded = ExpandVariables(value, vars);
    env[key] = expanded;
    if (key == "PATH") path_var = expanded;
  }
  for (const auto& [key, value] : vars) env[key] = value;
  if (path_var.empty()) path_var = "/usr/local/bin:/usr/bin:/bin";

  const std::string program = ResolveProgram((*argv)[0], path_var, pc.working_dir);
  if (program.empty()) {
    return Status::InvalidArgument("[cloud:process] command: program '" + (*argv)[0] + "' not found" +
                                   ((*argv)[0].find('/') == std::string::npos ? " on PATH" : ""));
  }

  const std::string log_dir = settings_.log_dir + "/" + ep.name;
  boost::system::error_code bec;
  boost::filesystem::create_directories(log_dir, bec);
  if (bec) return Status::IOError(log_dir, bec.message());
  boost::filesystem::create_directories(settings_.state_dir, bec);
  if (bec) return Status::IOError(settings_.state_dir, bec.message());

  const std::string log_file = log_dir + "/" + req.instance_id + ".log";
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::IOError(log_file, std::strerror(errno));
  {
    const std::string banner =
        "[reactor] starting " + req.instance_id + " on port " + std::to_string(*port) + ": " + JoinArgv(*argv) + "\n";
    if (::write(log_fd, banner.data(), banner.size()) < 0) {
      // The banner is a courtesy; the process's own output matters.
    }
  }

  // Everything the forked child touches is prepared here: between fork and
  // exec only async-signal-safe calls are allowed.
  const char* working_dir = pc.working_dir.empty() ? nullptr : pc.working_dir.c_str();
  struct rlimit rl;
  const int max_fd = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 65536))
                         : 65536;
  auto child_setup = [log_fd, working_dir, max_fd](auto& exec) {
    ::setsid();  // own session and process group: pgid == sid == pid
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    if (working_dir != nullptr && ::chdir(working_dir) != 0) {
      exec.set_error(std::error_code(errno, std::system_category()), "chdir to working_dir failed");
      ::_exit(127);
    }
    // The agent may block or ignore signals; the application starts clean.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) {
      ::signal(sig, SIG_DFL);
    }
    // Do not leak the agent's sockets and files into the application.
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  };
  auto reap_failed = [](auto& exec, const std::error_code&) {
    if (exec.pid > 0) {
      int st = 0;
      while (::waitpid(exec.pid, &st, 0) == -1 && errno == EINTR) {
      }
    }
  };

  std::vector<std::string> args(argv->begin() + 1, argv->end());
  std::error_code spawn_ec;
  pid_t pid = -1;
  try {
    bp::child child(bp::exe = program, bp::args = args, env, bp::std_in < bp::null,
                    bp::extend::on_exec_setup = child_setup, bp::extend::on_error = reap_failed, spawn_ec);
    if (!spawn_ec) {
      pid = child.id();
      child.detach();  // the process outlives this object and the agent
    }
  } catch (const std::exception& e) {
    ::close(log_fd);
    return Status::Internal(std::string("cannot start ") + program + ": " + e.what());
  }
  ::close(log_fd);
  if (spawn_ec || pid <= 0) {
    return Status::Unavailable("cannot start " + program + ": " + spawn_ec.message());
  }

  ProcStat st;
  if (!ReadProcStat(pid, &st)) {
    // Cannot happen for an unreaped child; refuse to record what we cannot verify.
    ::kill(-pid, SIGKILL);
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    return Status::Internal("cannot read /proc/" + std::to_string(pid) + "/stat");
  }
  ChildRegistry::Get().Add(pid, st.start_time);

  ProcessRecord record;
  record.instance_id = req.instance_id;
  record.endpoint = ep.name;
  record.manager = req.manager;
  record.pid = pid;
  record.start_time = st.start_time;
  record.port = *port;
  record.address = settings_.address + ":" + std::to_string(*port);
  record.argv = *argv;
  record.argv[0] = program;
  record.command = pc.command;
  record.log_file = log_file;
  record.started_at_ms = clock_.WallMillis();
  if (Status ws = WriteRecord(record); !ws.ok()) {
    // Without a record nobody could find or stop it: do not leave it running.
    ::kill(-pid, SIGKILL);
    ChildRegistry::Get().TryReap(pid, st.start_time, /*kill_remnants=*/true, nullptr);
    return ws;
  }
  known_.insert(record.instance_id);
  events_.Record(ep.name, "launch",
                 "started instance " + record.instance_id + " (pid " + std::to_string(pid) + ") on " + record.address +
                     ": " + JoinArgv(record.argv));
  return ToInfo(record);
}

Status ProcessCloud::Stop(const std::string& instance_id, Duration grace) {
  if (grace.count() < 0) grace = settings_.stop_grace;
  ProcessRecord record;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = ReadRecord(instance_id);
    if (!r.ok()) return r.status().IsNotFound() ? Status::Ok() : r.status();
    if (stopping_.count(instance_id) > 0) return Status::Conflict("instance " + instance_id + " is being stopped");
    stopping_.insert(instance_id);
    record = std::move(*r);
  }
  auto done_stopping = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.erase(instance_id);
  };

  const pid_t pid = record.pid;
  ChildRegistry& children = ChildRegistry::Get();
  // The pid is ours only if it still carries the recorded start time; a
  // zombie keeps both, and while any of it lives the group id cannot be
  // reused, so signalling the group is safe.
  ProcStat st;
  const bool verified = !record.exited && ReadProcStat(pid, &st) && st.start_time == record.start_time;
  std::string how;
  if (verified) {
    const Duration poll = std::max(settings_.poll_interval, Duration(1));
    auto wait_gone = [&](Duration limit) {
      const TimePoint deadline = clock_.Now() + limit;
      const int64_t budget = limit.count() / poll.count() + 1;  // bound even if the clock stands still
      for (int64_t i = 0;; ++i) {
        children.TryReap(pid, record.start_time, /*kill_remnants=*/false, nullptr);
        if (!GroupAlive(pid)) {
          // The leader may have turned zombie after the reap above.
          children.TryReap(pid, record.start_time, /*kill_remnants=*/false, nullptr);
          return true;
        }
        if (i >= budget || clock_.Now() >= deadline) return false;
        std::this_thread::sleep_for(poll);
      }
    };
    ::kill(-pid, SIGTERM);
    if (wait_gone(grace)) {
      how = "stopped";
    } else {
      ::kill(-pid, SIGKILL);
      if (!wait_gone(settings_.kill_wait)) {
        done_stopping();
        return Status::Unavailable("process group " + std::to_string(pid) + " of instance " + instance_id +
                                   " is still alive after SIGKILL");
      }
      how = "killed after a grace of " + FormatDuration(grace);
    }
  } else {
    children.TryReap(pid, record.start_time, /*kill_remnants=*/false, nullptr);
    how = record.exited ? "removed (" + record.exit_detail + ")" : "removed (process was already gone)";
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.erase(instance_id);
    known_.erase(instance_id);
    const std::string path = RecordPath(instance_id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::IOError(path, std::strerror(errno));
  }
  events_.Record(record.endpoint, "stop", "instance " + instance_id + " (pid " + std::to_string(pid) + ") " + how);
  // Logs are bounded: an endpoint's old logs go when one of its instances does.
  if (!record.log_file.empty()) {
    std::set<std::string> live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto all = ReadAllRecords();
      if (all.ok()) {
        for (const auto& r : *all) live.insert(r.instance_id);
      }
    }
    PruneInstanceLogs(boost::filesystem::path(record.log_file).parent_path().string(), clock_.WallMillis(),
                      settings_.log_retention, live);
  }
  return Status::Ok();
}

int PruneInstanceLogs(const std::string& dir, int64_t now_wall_ms, Duration retention,
                      const std::set<std::string>& live_ids) {
  namespace bfs = boost::filesystem;
  boost::system::error_code ec;
  int deleted = 0;
  for (bfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const bfs::path& p = it->path();
    if (p.extension() != ".log" || !bfs::is_regular_file(bfs::symlink_status(p, ec))) continue;
    if (live_ids.count(p.stem().string())) continue;
    std::time_t mtime = bfs::last_write_time(p, ec);
    if (ec) {
      ec.clear();
      continue;
    }
    if (now_wall_ms - static_cast<int64_t>(mtime) * 1000 < retention.count()) continue;
    if (bfs::remove(p, ec)) deleted++;
    ec.clear();
  }
  return deleted;
}

Result<std::vector<InstanceInfo>> ProcessCloud::List(const std::string& manager) {
  std::lock_guard<std::mutex> lock(mu_);
  auto records = ReadAllRecords();
  if (!records.ok()) return records.status();
  std::vector<InstanceInfo> out;
  for (ProcessRecord& r : *records) {
    if (r.manager != manager) continue;
    Refresh(r);
    if (known_.insert(r.instance_id).second && !r.exited) {
      events_.Record(
          r.endpoint, "adopt",
          "adopted running instance " + r.instance_id + " (pid " + std::to_string(r.pid) + ") on " + r.address);
    }
    out.push_back(ToInfo(r));
  }
  return out;
}

Result<InstanceInfo> ProcessCloud::Inspect(const std::string& instance_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = ReadRecord(instance_id);
  if (!r.ok()) return r.status();
  Refresh(*r);
  return ToInfo(*r);
}

}  // namespace reactor
