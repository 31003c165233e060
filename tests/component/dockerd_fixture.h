// A private dockerd for component tests (SPEC.md §12): its own data root,
// exec root and unix socket under a temp dir, no bridge, no iptables, vfs
// storage, so only host-network containers run. It imports a busybox-static
// image (no registry is reachable). Everything is bounded in time and
// everything it starts is stopped by pid; the temp dir is removed (after
// unmounting what dockerd left mounted in it).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/cloud/docker_client.h"

extern char** environ;

namespace reactor {

class DockerdFixture {
 public:
  DockerdFixture() = default;
  ~DockerdFixture() { Stop(); }
  DockerdFixture(const DockerdFixture&) = delete;
  DockerdFixture& operator=(const DockerdFixture&) = delete;

  /// Starts dockerd and waits (at most `limit`) until it answers /_ping.
  /// Returns "" or why it could not, with the end of dockerd's log.
  std::string Start(std::chrono::seconds limit = std::chrono::seconds(30)) {
    char tmpl[] = "/tmp/reactor-dockerd.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = tmpl;
    socket_ = dir_ + "/docker.sock";
    const std::string dockerd = FindProgram("dockerd");
    if (dockerd.empty()) return "dockerd not found in /usr/sbin, /usr/bin, /sbin, /bin (install docker.io)";
    std::vector<std::string> argv = {dockerd,
                                     "--bridge=none",
                                     "--iptables=false",
                                     "--ip-masq=false",
                                     "--storage-driver=vfs",
                                     "--data-root=" + dir_ + "/data",
                                     "--exec-root=" + dir_ + "/exec",
                                     "--pidfile=" + dir_ + "/docker.pid",
                                     "--host=unix://" + socket_,
                                     "--userland-proxy=false"};
    auto pid = Spawn(argv, dir_ + "/dockerd.log");
    if (pid <= 0) return "cannot start " + dockerd + ": " + std::strerror(errno);
    pid_ = pid;

    DockerClientSettings cs;
    cs.socket = socket_;
    cs.request_timeout = std::chrono::milliseconds(30000);
    cs.pull_timeout = std::chrono::milliseconds(60000);
    client_ = std::make_unique<DockerClient>(cs);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "dockerd exited during start-up (wait status " + std::to_string(status) + "); its log ends:\n" +
               LogTail();
      }
      if (::access(socket_.c_str(), F_OK) == 0 && client_->Ping().ok()) return "";
      if (std::chrono::steady_clock::now() > deadline) {
        return "dockerd did not answer on " + socket_ + " within " + std::to_string(limit.count()) +
               "s; its log ends:\n" + LogTail();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  /// Builds a root filesystem of busybox-static (/bin/busybox and links for
  /// sh, httpd, sleep, ...; /www/index.html; /etc/passwd with root and
  /// nobody) and imports it as `repo:tag`. Returns "" or why not.
  std::string ImportBusyboxImage(const std::string& repo, const std::string& tag) {
    namespace fs = std::filesystem;
    const std::string root = dir_ + "/rootfs";
    std::error_code ec;
    for (const char* d : {"/bin", "/www", "/tmp", "/etc"}) fs::create_directories(root + d, ec);
    if (ec) return "mkdir " + root + ": " + ec.message();
    const std::string busybox = FindProgram("busybox");
    if (busybox.empty()) return "busybox not found (install busybox-static)";
    fs::copy_file(busybox, root + "/bin/busybox", fs::copy_options::overwrite_existing, ec);
    if (ec) return "copy " + busybox + ": " + ec.message();
    for (const char* tool : {"sh", "httpd", "sleep", "cat", "echo", "ls", "wget", "id", "env", "true", "false"}) {
      fs::create_symlink("busybox", root + "/bin/" + tool, ec);
      ec.clear();
    }
    WriteFile(root + "/www/index.html", "hello from reactor-test\n");
    WriteFile(root + "/etc/passwd", "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    WriteFile(root + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
    ::chmod((root + "/tmp").c_str(), 01777);
    const std::string tar_file = dir_ + "/rootfs.tar";
    const std::string tar = FindProgram("tar");
    if (tar.empty()) return "tar not found";
    const pid_t pid = Spawn({tar, "-C", root, "-cf", tar_file, "."}, dir_ + "/tar.log");
    int status = 0;
    if (pid <= 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return "tar of " + root + " failed: " + ReadFile(dir_ + "/tar.log");
    }
    auto id = client_->ImportImage(ReadFile(tar_file), repo, tag);
    if (!id.ok()) return "import: " + id.status().ToString();
    return "";
  }

  /// Removes every container, stops dockerd (SIGTERM, SIGKILL after 15 s),
  /// unmounts what it left mounted and removes the temp dir. Idempotent.
  void Stop() {
    if (client_ != nullptr && pid_ > 0) {
      auto all = client_->List({}, /*all=*/true);
      if (all.ok()) {
        for (const ContainerSummary& c : *all) client_->Remove(c.id, /*force=*/true);
      }
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!WaitExit(pid_, std::chrono::seconds(15))) {
        ::kill(pid_, SIGKILL);
        WaitExit(pid_, std::chrono::seconds(5));
      }
      pid_ = -1;
    }
    client_.reset();
    if (dir_.empty()) return;
    KillLeftovers();
    UnmountUnder(dir_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }

  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  DockerClient& client() { return *client_; }
  pid_t pid() const { return pid_; }

  std::string LogTail(size_t bytes = 4000) const {
    const std::string log = ReadFile(dir_ + "/dockerd.log");
    return log.size() > bytes ? log.substr(log.size() - bytes) : log;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
  }

 private:
  static std::string FindProgram(const std::string& name) {
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
      const std::string path = std::string(dir) + "/" + name;
      if (::access(path.c_str(), X_OK) == 0) return path;
    }
    return "";
  }

  static void WriteFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }

  /// Starts `argv` with stdout and stderr to `log`, stdin from /dev/null,
  /// in its own process group, with a PATH that finds containerd and runc.
  static pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "PATH=", 5) != 0 && std::strncmp(*e, "DOCKER_", 7) != 0) env_store.push_back(*e);
    }
    env_store.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::vector<char*> envp;
    for (std::string& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (std::string& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      errno = rc;
      return -1;
    }
    return pid;
  }

  static bool WaitExit(pid_t pid, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r == -1 && errno == ECHILD)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  /// After a SIGKILL of dockerd its containerd (and shims) may be left: only
  /// processes whose command line names our private dir are ours.
  void KillLeftovers() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      std::string cmdline = ReadFile("/proc/" + name + "/cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(dir_ + "/") == std::string::npos) continue;
      const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
      if (pid > 1 && pid != ::getpid()) ::kill(pid, SIGKILL);
    }
  }

  /// Lazily unmounts every mount point under `dir` (dockerd leaves its
  /// network namespace file exec/netns/default mounted), deepest first.
  static void UnmountUnder(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::vector<std::string> points;
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, parent, devs, root, point;
      if (!(fields >> id >> parent >> devs >> root >> point)) continue;
      if (point.rfind(dir + "/", 0) == 0) points.push_back(point);
    }
    std::sort(points.begin(), points.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& p : points) ::umount2(p.c_str(), MNT_DETACH);
  }

  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  std::unique_ptr<DockerClient> client_;
};

}  // namespace reactor
