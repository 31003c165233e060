// The kernel's TCP socket table (/proc/net/tcp and tcp6): listening ports for
// the port-in-use check, and ESTABLISHED connections to a backend for the
// `active` metric and for draining.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace reactor {

struct TcpSocket {
  std::string local_ip;  // dotted quad, or the IPv6 text form
  int local_port = 0;
  std::string remote_ip;
  int remote_port = 0;
  int state = 0;       // kernel TCP state: 1 ESTABLISHED, 10 LISTEN
  uint64_t inode = 0;  // the socket's inode (0 when the line has none)
};

/// Sockets of this process that are not traffic to an instance — the health
/// prober's own connections — by socket inode (fstat's st_ino of the socket,
/// the `inode` column of /proc/net/tcp). Thread-safe.
class ExcludedSockets {
 public:
  void Add(uint64_t inode);
  void Remove(uint64_t inode);
  bool Contains(uint64_t inode) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_set<uint64_t> inodes_;  // guarded by mu_
};

/// The process-wide set: the health prober adds each socket it opens and
/// removes it before closing it; CountEstablishedTo skips them by default.
ExcludedSockets& ProbeSockets();

constexpr int kTcpEstablished = 1;
constexpr int kTcpListen = 10;

/// Parses the text of a /proc/net/tcp or tcp6 file; malformed lines are skipped.
std::vector<TcpSocket> ParseProcNetTcp(const std::string& text);
/// Reads both files from `proc_dir` (default /proc/net).
std::vector<TcpSocket> ReadTcpTable(const std::string& proc_dir = "/proc/net");
/// Ports in LISTEN state on any address, from ReadTcpTable().
std::set<int> ListeningPorts();
/// True if `ip`:port (IPv4; loopback if `ip` is not IPv4) can be bound right
/// now. No SO_REUSEADDR, so a socket on 0.0.0.0:port or in TIME_WAIT also
/// counts as taken.
bool CanBindTcp(const std::string& ip, int port);
/// Number of ESTABLISHED sockets whose remote end is `address` ("ip:port"),
/// not counting those in `excluded` (by default the health prober's own, so
/// probes never hold up a drain or count as `active`).
int CountEstablishedTo(const std::vector<TcpSocket>& table, const std::string& address,
                       const ExcludedSockets& excluded = ProbeSockets());

/// The same counts for many addresses against one table: built once (one
/// pass over the table), then each To() is a hash lookup.
class EstablishedCounts {
 public:
  explicit EstablishedCounts(const std::vector<TcpSocket>& table, const ExcludedSockets& excluded = ProbeSockets());
  /// CountEstablishedTo(table, address, excluded).
  int To(const std::string& address) const;

 private:
  std::unordered_map<std::string, int> by_remote_;  // "ip:port" → ESTABLISHED sockets
};

}  // namespace reactor
