// A real etcd cluster for component tests (SPEC.md §12): N members of
// Debian's etcd (/usr/bin/etcd, 3.4) on 127.0.0.1, each with its own data
// dir under a private temp dir (on /dev/shm when it exists: fsync-heavy raft
// on a shared disk makes tests slow, not more real) and its own client and
// peer ports. Members are stopped by pid; a member can be killed (SIGKILL)
// and restarted on its data dir mid-test. Every wait is bounded.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>

extern char** environ;

namespace reactor {

class EtcdCluster {
 public:
  static constexpr const char* kEtcdBinary = "/usr/bin/etcd";

  EtcdCluster() = default;
  ~EtcdCluster() { Stop(); }
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  /// Starts `members` members and waits (at most `limit`) until every one
  /// answers /health. Returns "" or why not, with the end of each log.
  std::string Start(int members = 3, std::chrono::seconds limit = std::chrono::seconds(30)) {
    if (::access(kEtcdBinary, X_OK) != 0) {
      return std::string(kEtcdBinary) + " not found (install etcd-server: packaging/install-deps.sh)";
    }
    const std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/reactor-etcd.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = tmpl;
    members_.resize(members);
    std::string initial;
    for (int i = 0; i < members; ++i) {
      Member& m = members_[i];
      m.name = "m" + std::to_string(i);
      m.client_port = FreePort();
      m.peer_port = FreePort();
      if (m.client_port == 0 || m.peer_port == 0) return "no free loopback port";
      m.data_dir = dir_ + "/" + m.name;
      initial += (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
    }
    initial_cluster_ = initial;
    token_ = "reactor-test-" + std::to_string(::getpid()) + "-" + std::to_string(members_[0].client_port);
    for (int i = 0; i < members; ++i) {
      std::string why = StartMember(i);
      if (!why.empty()) return why;
    }
    return WaitHealthy(limit);
  }

  /// SIGKILLs member `i` and waits for it to exit.
  void Kill(int i) {
    Member& m = members_.at(i);
    if (m.pid <= 0) return;
    ::kill(m.pid, SIGKILL);
    WaitExit(m.pid, std::chrono::seconds(10));
    m.pid = -1;
  }

  /// Restarts member `i` on its data dir; "" or why not.
  std::string Restart(int i, std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::string why = StartMember(i);
    if (!why.empty()) return why;
    return WaitHealthy(limit);
  }

  /// Restarts every member that is not running, then waits for all.
  std::string RestartAll(std::chrono::seconds limit = std::chrono::seconds(30)) {
    for (int i = 0; i < size(); ++i) {
      if (members_[i].pid > 0) continue;
      std::string why = StartMember(i);
      if (!why.empty()) return why;
    }
    return WaitHealthy(limit);
  }

  /// Stops every member (SIGTERM, SIGKILL after 10 s) and removes the dir.
  void Stop() {
    for (Member& m : members_) {
      if (m.pid <= 0) continue;
      ::kill(m.pid, SIGTERM);
      if (!WaitExit(m.pid, std::chrono::seconds(10))) {
        ::kill(m.pid, SIGKILL);
        WaitExit(m.pid, std::chrono::seconds(5));
      }
      m.pid = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  /// "etcd://127.0.0.1:P1,127.0.0.1:P2,..." for OpenStore.
  std::string Url() const {
    std::string out = "etcd://";
    for (size_t i = 0; i < members_.size(); ++i) out += (i ? "," : "") + Endpoint(static_cast<int>(i));
    return out;
  }
  std::vector<std::string> Endpoints() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < members_.size(); ++i) out.push_back(Endpoint(static_cast<int>(i)));
    return out;
  }
  std::string Endpoint(int i) const { return "127.0.0.1:" + std::to_string(members_.at(i).client_port); }
  pid_t pid(int i) const { return members_.at(i).pid; }
  int size() const { return static_cast<int>(members_.size()); }
  const std::string& dir() const { return dir_; }

  std::string LogTail(int i, size_t bytes = 2000) const {
    std::ifstream in(dir_ + "/" + members_.at(i).name + ".log", std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string log = buf.str();
    return log.size() > bytes ? log.substr(log.size() - bytes) : log;
  }

  /// POSTs `body` to member `i`'s gateway `path`; "" on failure.
  std::string Post(int i, const std::string& path, const std::string& body) const {
    return HttpPost("http://" + Endpoint(i) + path, body);
  }

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data_dir;
    pid_t pid = -1;
  };

  std::string StartMember(int i) {
    Member& m = members_.at(i);
    const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
    std::vector<std::string> argv = {kEtcdBinary,
                                     "--name=" + m.name,
                                     "--data-dir=" + m.data_dir,
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=" + initial_cluster_,
                                     "--initial-cluster-token=" + token_,
                                     "--initial-cluster-state=new",
                                     "--heartbeat-interval=100",
                                     "--election-timeout=1000",
                                     "--enable-v2=false",
                                     "--logger=zap",
                                     "--log-level=warn"};
    m.pid = Spawn(argv, dir_ + "/" + m.name + ".log");
    if (m.pid <= 0) return std::string("cannot start ") + kEtcdBinary + ": " + std::strerror(errno);
    return "";
  }

  std::string WaitHealthy(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      bool all = true;
      for (size_t i = 0; i < members_.size(); ++i) {
        Member& m = members_[i];
        if (m.pid <= 0) continue;  // killed on purpose
        int status = 0;
        if (::waitpid(m.pid, &status, WNOHANG) == m.pid) {
          m.pid = -1;
          return "etcd member " + m.name + " exited during start-up (wait status " + std::to_string(status) +
                 "); its log ends:\n" + LogTail(static_cast<int>(i));
        }
        const std::string health = HttpGet("http://" + Endpoint(static_cast<int>(i)) + "/health");
        if (health.find("\"true\"") == std::string::npos) all = false;
      }
      if (all) return "";
      if (std::chrono::steady_clock::now() > deadline) {
        std::string logs;
        for (size_t i = 0; i < members_.size(); ++i)
          logs += "\n--- " + members_[i].name + ":\n" + LogTail(static_cast<int>(i));
        return "etcd cluster not healthy within " + std::to_string(limit.count()) + "s" + logs;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  static int FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }

  static size_t Append(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
  }

  static std::string HttpRequest(const std::string& url, const std::string* post_body) {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return "";
    std::string body;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    if (post_body != nullptr) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->c_str());
    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? body : "";
  }
  static std::string HttpGet(const std::string& url) { return HttpRequest(url, nullptr); }
  static std::string HttpPost(const std::string& url, const std::string& body) { return HttpRequest(url, &body); }

  static pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
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
    // etcd reads ETCD_* variables as flags: none of the caller's may leak in.
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "ETCD", 4) != 0) env_store.push_back(*e);
    }
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
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::string dir_;
  std::string initial_cluster_;
  std::string token_;
  std::vector<Member> members_;
};

}  // namespace reactor
