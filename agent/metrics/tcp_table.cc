#include "agent/metrics/tcp_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace reactor {

namespace {

// Hex digits of [p, end) as an unsigned value; false unless all are hex.
bool Hex(const char* p, const char* end, uint64_t* out) {
  if (p == end || end - p > 16) return false;
  uint64_t v = 0;
  for (; p < end; ++p) {
    const char c = *p;
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// "0100007F:1F90" → ("127.0.0.1", 8080). The kernel prints each 32-bit word
// of the address in host byte order.
bool ParseEndpoint(const char* p, const char* end, std::string* ip, int* port) {
  const char* colon = static_cast<const char*>(std::memchr(p, ':', static_cast<size_t>(end - p)));
  if (colon == nullptr) return false;
  uint64_t port_value = 0;
  if (!Hex(colon + 1, end, &port_value) || port_value > 65535) return false;
  *port = static_cast<int>(port_value);
  char buf[INET6_ADDRSTRLEN] = {0};
  const std::ptrdiff_t len = colon - p;
  if (len == 8) {
    uint64_t word = 0;
    if (!Hex(p, colon, &word)) return false;
    in_addr a{};
    a.s_addr = static_cast<uint32_t>(word);
    if (!inet_ntop(AF_INET, &a, buf, sizeof buf)) return false;
  } else if (len == 32) {
    in6_addr a{};
    for (int w = 0; w < 4; ++w) {
      uint64_t word = 0;
      if (!Hex(p + w * 8, p + w * 8 + 8, &word)) return false;
      const uint32_t word32 = static_cast<uint32_t>(word);
      std::memcpy(&a.s6_addr[w * 4], &word32, 4);
    }
    if (!inet_ntop(AF_INET6, &a, buf, sizeof buf)) return false;
    // IPv4-mapped addresses read as their IPv4 form.
    const char* mapped = "::ffff:";
    if (std::strncmp(buf, mapped, 7) == 0 && std::strchr(buf + 7, '.') != nullptr) {
      ip->assign(buf + 7);
      return true;
    }
  } else {
    return false;
  }
  ip->assign(buf);
  return true;
}

inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// The next whitespace-separated field of [*p, end), or false at the end.
bool NextField(const char** p, const char* end, const char** field, const char** field_end) {
  const char* q = *p;
  while (q < end && IsBlank(*q)) ++q;
  if (q == end) return false;
  *field = q;
  while (q < end && !IsBlank(*q)) ++q;
  *field_end = q;
  *p = q;
  return true;
}

}  // namespace

void ExcludedSockets::Add(uint64_t inode) {
  std::lock_guard<std::mutex> lock(mu_);
  inodes_.insert(inode);
}

void ExcludedSockets::Remove(uint64_t inode) {
  std::lock_guard<std::mutex> lock(mu_);
  inodes_.erase(inode);
}

bool ExcludedSockets::Contains(uint64_t inode) const {
  std::lock_guard<std::mutex> lock(mu_);
  return inodes_.count(inode) != 0;
}

size_t ExcludedSockets::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return inodes_.size();
}

ExcludedSockets& ProbeSockets() {
  static ExcludedSockets* sockets = new ExcludedSockets;  // never destroyed: used until exit
  return *sockets;
}

// One pass over the text without streams: with a prober connection per
// backend the table holds tens of thousands of lines.
std::vector<TcpSocket> ParseProcNetTcp(const std::string& text) {
  std::vector<TcpSocket> out;
  const char* p = text.data();
  const char* const end = p + text.size();
  const char* nl = static_cast<const char*>(std::memchr(p, '\n', text.size()));
  p = nl == nullptr ? end : nl + 1;  // the header
  while (p < end) {
    nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = nl == nullptr ? end : nl;
    const char* q = p;
    p = nl == nullptr ? end : nl + 1;
    const char* f[10];
    const char* fe[10];
    int n = 0;
    while (n < 10 && NextField(&q, line_end, &f[n], &fe[n])) ++n;
    if (n < 4) continue;
    TcpSocket s;
    if (!ParseEndpoint(f[1], fe[1], &s.local_ip, &s.local_port)) continue;
    if (!ParseEndpoint(f[2], fe[2], &s.remote_ip, &s.remote_port)) continue;
    uint64_t state = 0;
    if (!Hex(f[3], fe[3], &state)) continue;
    s.state = static_cast<int>(state);
    if (n == 10) {
      uint64_t inode = 0;
      for (const char* d = f[9]; d < fe[9] && *d >= '0' && *d <= '9'; ++d)
        inode = inode * 10 + static_cast<uint64_t>(*d - '0');
      s.inode = inode;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<TcpSocket> ReadTcpTable(const std::string& proc_dir) {
  std::vector<TcpSocket> all;
  for (const char* name : {"/tcp", "/tcp6"}) {
    std::ifstream f(proc_dir + name);
    if (!f) continue;
    std::stringstream ss;
    ss << f.rdbuf();
    auto part = ParseProcNetTcp(ss.str());
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

std::set<int> ListeningPorts() {
  std::set<int> ports;
  for (const auto& s : ReadTcpTable()) {
    if (s.state == kTcpListen) ports.insert(s.local_port);
  }
  return ports;
}

bool CanBindTcp(const std::string& ip, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

int CountEstablishedTo(const std::vector<TcpSocket>& table, const std::string& address,
                       const ExcludedSockets& excluded) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  std::string ip = address.substr(0, colon);
  int port = std::atoi(address.c_str() + colon + 1);
  int n = 0;
  for (const auto& s : table) {
    if (s.state == kTcpEstablished && s.remote_port == port && s.remote_ip == ip &&
        (s.inode == 0 || !excluded.Contains(s.inode))) {
      ++n;
    }
  }
  return n;
}

EstablishedCounts::EstablishedCounts(const std::vector<TcpSocket>& table, const ExcludedSockets& excluded) {
  for (const auto& s : table) {
    if (s.state == kTcpEstablished && (s.inode == 0 || !excluded.Contains(s.inode))) {
      ++by_remote_[s.remote_ip + ":" + std::to_string(s.remote_port)];
    }
  }
}

int EstablishedCounts::To(const std::string& address) const {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  auto it = by_remote_.find(address.substr(0, colon) + ":" + std::to_string(std::atoi(address.c_str() + colon + 1)));
  return it == by_remote_.end() ? 0 : it->second;
}

}  // namespace reactor
