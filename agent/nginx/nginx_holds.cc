#include "agent/nginx/nginx_holds.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "agent/endpoint/endpoint_parser.h"

namespace reactor {
namespace {

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string f;
  while (in >> f) out.push_back(f);
  return out;
}

bool Unsigned(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

bool Count(const std::string& s, int* out) {
  uint64_t v = 0;
  if (!Unsigned(s, &v) || v > 100000000) return false;
  *out = static_cast<int>(v);
  return true;
}

Status Malformed(const char* what, const std::string& line) {
  return Status::InvalidArgument(std::string("nginx ") + what + ": malformed line '" + line.substr(0, 200) + "'");
}

std::vector<std::string> Lines(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace

Result<WakeNotices> ParseWakeNotices(const std::string& body) {
  std::vector<std::string> lines = Lines(body);
  WakeNotices out;
  if (lines.empty() || !Unsigned(lines[0], &out.seq)) {
    return Status::InvalidArgument("nginx /wakes: no notice sequence on the first line");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = Fields(lines[i]);
    HeldRequests h;
    uint64_t since = 0;
    if (f.size() != 3 || !IsValidEndpointName(f[0]) || !Count(f[1], &h.held) || !Unsigned(f[2], &since)) {
      return Malformed("/wakes", lines[i]);
    }
    h.endpoint = f[0];
    h.since_ms = static_cast<int64_t>(since);
    out.endpoints.push_back(std::move(h));
  }
  return out;
}

Result<HoldReport> ParseHoldReport(const std::string& body) {
  std::vector<std::string> lines = Lines(body);
  HoldReport out;
  std::vector<std::string> head = lines.empty() ? std::vector<std::string>() : Fields(lines[0]);
  if (head.size() < 2 || head[0] != "le") return Status::InvalidArgument("nginx /holds: no bucket bounds");
  for (size_t i = 1; i < head.size(); ++i) {
    char* end = nullptr;
    errno = 0;
    double b = std::strtod(head[i].c_str(), &end);
    if (errno != 0 || end == head[i].c_str() || *end != '\0' || !std::isfinite(b) || b <= 0 ||
        (!out.bounds.empty() && b <= out.bounds.back())) {
      return Malformed("/holds", lines[0]);
    }
    out.bounds.push_back(b);
  }
  const size_t want = 7 + out.bounds.size() + 1;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = Fields(lines[i]);
    HoldStats s;
    uint64_t wait_ms = 0;
    if (f.size() != want || !IsValidEndpointName(f[0]) || !Count(f[1], &s.held) || !Unsigned(f[2], &s.wakes) ||
        !Unsigned(f[3], &s.served) || !Unsigned(f[4], &s.timed_out) || !Unsigned(f[5], &s.rejected) ||
        !Unsigned(f[6], &wait_ms)) {
      return Malformed("/holds", lines[i]);
    }
    s.wait_seconds_sum = static_cast<double>(wait_ms) / 1000.0;
    for (size_t b = 7; b < f.size(); ++b) {
      uint64_t n = 0;
      if (!Unsigned(f[b], &n)) return Malformed("/holds", lines[i]);
      s.buckets.push_back(n);
    }
    out.endpoints[f[0]] = std::move(s);
  }
  return out;
}

}  // namespace reactor
