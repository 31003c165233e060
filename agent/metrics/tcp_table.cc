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

// "0100007F:1F90" → ("127.0.0.1", 8080). The kernel prints each 32-bit word
// of the address in host byte order.
bool ParseEndpoint(const std::string& field, std::string* ip, int* port) {
  auto colon = field.find(':');
  if (colon == std::string::npos) return false;
  std::string hex = field.substr(0, colon);
  *port = static_cast<int>(std::strtol(field.c_str() + colon + 1, nullptr, 16));
  char buf[INET6_ADDRSTRLEN] = {0};
  if (hex.size() == 8) {
    uint32_t word = static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16));
    in_addr a{};
    a.s_addr = word;
    if (!inet_ntop(AF_INET, &a, buf, sizeof buf)) return false;
  } else if (hex.size() == 32) {
    in6_addr a{};
    for (int w = 0; w < 4; ++w) {
      uint32_t word = static_cast<uint32_t>(std::strtoul(hex.substr(w * 8, 8).c_str(), nullptr, 16));
      std::memcpy(&a.s6_addr[w * 4], &word, 4);
    }
    if (!inet_ntop(AF_INET6, &a, buf, sizeof buf)) return false;
    // IPv4-mapped addresses read as their IPv4 form.
    std::string s = buf;
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) {
      *ip = s.substr(7);
      return true;
    }
  } else {
    return false;
  }
  *ip = buf;
  return true;
}

}  // namespace

std::vector<TcpSocket> ParseProcNetTcp(const std::string& text) {
  std::vector<TcpSocket> out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string sl, local, remote, state;
    if (!(ls >> sl >> local >> remote >> state)) continue;
    TcpSocket s;
    if (!ParseEndpoint(local, &s.local_ip, &s.local_port)) continue;
    if (!ParseEndpoint(remote, &s.remote_ip, &s.remote_port)) continue;
    s.state = static_cast<int>(std::strtol(state.c_str(), nullptr, 16));
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

int CountEstablishedTo(const std::vector<TcpSocket>& table, const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  std::string ip = address.substr(0, colon);
  int port = std::atoi(address.c_str() + colon + 1);
  int n = 0;
  for (const auto& s : table) {
    if (s.state == kTcpEstablished && s.remote_port == port && s.remote_ip == ip) ++n;
  }
  return n;
}

}  // namespace reactor
