#include "agent/store/store_copy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "agent/common/clock.h"
#include "agent/store/etcd_store.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"

extern char** environ;

namespace reactor {
namespace {

constexpr size_t kBatch = 100;  // puts per transaction: under etcd's 128

bool IsSqliteFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {0};
  in.read(magic, sizeof(magic));
  return in.gcount() == 16 && std::memcmp(magic, "SQLite format 3\0", 16) == 0;
}

// A private temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "reactor-restore.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int FreeLoopbackPort() {
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

// Runs argv (no shell) with output to `log`; the pid, or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "ETCD", 4) != 0) env_store.push_back(*e);  // etcd reads ETCD_* as flags
  }
  env_store.push_back("ETCDCTL_API=3");
  std::vector<char*> envp;
  for (std::string& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits up to `limit` for `pid`; its wait status, or -1 if still running.
int WaitFor(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > 1500 ? s.substr(s.size() - 1500) : s;
}

// An etcd snapshot served by a temporary single-member etcd on loopback.
class SnapshotServer {
 public:
  ~SnapshotServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (WaitFor(pid_, std::chrono::seconds(10)) == -1) {
        ::kill(pid_, SIGKILL);
        WaitFor(pid_, std::chrono::seconds(5));
      }
    }
  }

  Status Start(const std::string& snapshot, const std::string& dir, const std::string& etcd,
               const std::string& etcdctl) {
    const int client = FreeLoopbackPort(), peer = FreeLoopbackPort();
    if (client == 0 || peer == 0) return Status::IOError("restore", "no free loopback port");
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    const std::string data = dir + "/etcd-data";
    const std::string log = dir + "/etcd.log";
    pid_t p = Spawn({etcdctl, "snapshot", "restore", snapshot, "--data-dir=" + data, "--name=restore",
                     "--initial-cluster=restore=" + peer_url, "--initial-advertise-peer-urls=" + peer_url},
                    log);
    if (p <= 0) return Status::IOError("restore " + snapshot, "cannot run " + etcdctl + ": " + std::strerror(errno));
    int status = WaitFor(p, std::chrono::seconds(60));
    if (status == -1) {
      ::kill(p, SIGKILL);
      WaitFor(p, std::chrono::seconds(5));
      return Status::IOError("restore " + snapshot, "etcdctl snapshot restore did not finish within 60 s");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::InvalidArgument("restore " + snapshot +
                                     ": not an etcd snapshot or an SQLite backup: " + Tail(log));
    }
    endpoint_ = "127.0.0.1:" + std::to_string(client);
    const std::string client_url = "http://" + endpoint_;
    pid_ = Spawn(
        {etcd, "--name=restore", "--data-dir=" + data, "--listen-client-urls=" + client_url,
         "--advertise-client-urls=" + client_url, "--listen-peer-urls=" + peer_url,
         "--initial-advertise-peer-urls=" + peer_url, "--initial-cluster=restore=" + peer_url, "--enable-v2=false"},
        log);
    if (pid_ <= 0) return Status::IOError("restore", "cannot run " + etcd + ": " + std::strerror(errno));
    return Status::Ok();
  }
  const std::string& endpoint() const { return endpoint_; }
  bool running() {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
  std::string endpoint_;
};

}  // namespace

Result<CopyStats> CopyState(Store& from, Store& to, bool force) {
  auto existing = to.GetPrefix(kKeyRoot);
  if (!existing.ok()) return existing.status().WithContext("reading the target");
  // etcd's compaction turn is the store's own bookkeeping, not state.
  const std::string compaction_key = EtcdCompactionKey();
  existing->erase(
      std::remove_if(existing->begin(), existing->end(), [&](const KeyValue& kv) { return kv.key == compaction_key; }),
      existing->end());
  if (!existing->empty()) {
    if (!force) {
      return Status::Conflict("the target already holds " + std::to_string(existing->size()) + " keys under " +
                              kKeyRoot + " (first: " + existing->front().key +
                              "); refusing to overwrite it (--force replaces them)");
    }
    REACTOR_RETURN_IF_ERROR(to.DeletePrefix(kKeyRoot).WithContext("clearing the target"));
  }
  CopyStats stats;
  auto kvs = from.GetPrefix(kKeyRoot, &stats.source_revision);
  if (!kvs.ok()) return kvs.status().WithContext("reading the source");
  Txn txn;
  auto flush = [&]() -> Status {
    if (txn.success.empty()) return Status::Ok();
    auto r = to.Commit(txn);
    if (!r.ok()) {
      return r.status().WithContext("writing the target after " + std::to_string(stats.copied) + " of " +
                                    std::to_string(kvs->size()) + " keys (run again with --force to start over)");
    }
    stats.copied += txn.success.size();
    txn.success.clear();
    return Status::Ok();
  };
  for (const KeyValue& kv : *kvs) {
    if (kv.key == compaction_key) continue;
    if (kv.lease != 0) {
      ++stats.skipped_leased;
      continue;
    }
    txn.success.push_back(Op::Put(kv.key, kv.value));
    if (txn.success.size() == kBatch) REACTOR_RETURN_IF_ERROR(flush());
  }
  REACTOR_RETURN_IF_ERROR(flush());
  return stats;
}

Result<CopyStats> RestoreBackup(const std::string& file, Store& to, bool force, const std::string& etcd_binary,
                                const std::string& etcdctl_binary) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return Status::IOError("restore " + file, "no such file");
  TempDir tmp;
  if (tmp.path().empty()) return Status::IOError("restore", std::string("mkdtemp: ") + std::strerror(errno));
  if (IsSqliteFile(file)) {
    const std::string copy = tmp.path() + "/state.db";
    std::filesystem::copy_file(file, copy, ec);
    if (ec) return Status::IOError("restore " + file, "copy to " + copy + ": " + ec.message());
    auto source = SqliteStore::Open(copy, SystemClock::Get());
    if (!source.ok()) return source.status().WithContext("restore " + file);
    return CopyState(**source, to, force);
  }
  SnapshotServer server;
  REACTOR_RETURN_IF_ERROR(server.Start(file, tmp.path(), etcd_binary, etcdctl_binary));
  EtcdOptions o;
  o.endpoints = {server.endpoint()};
  auto source = EtcdStore::Open(o);
  if (!source.ok()) return source.status();
  // Bounded wait for the temporary member to serve.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    auto rev = (*source)->Revision();
    if (rev.ok()) break;
    if (!server.running() || std::chrono::steady_clock::now() > deadline) {
      return Status::IOError("restore " + file, "the temporary etcd for the snapshot did not serve: " +
                                                    rev.status().message() + "\n" + Tail(tmp.path() + "/etcd.log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto stats = CopyState(**source, to, force);
  source->reset();
  return stats;
}

}  // namespace reactor
