#include "agent/metrics/access_log_parser.h"

#include <cstring>

#include "agent/metrics/log_format.h"

namespace reactor {

namespace {

constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

bool ParseUnsigned(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// An HTTP status: exactly three digits, 100..999.
bool ParseStatus(std::string_view s, int* out) {
  if (s.size() != 3 || !IsDigit(s[0]) || !IsDigit(s[1]) || !IsDigit(s[2]) || s[0] == '0') return false;
  *out = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
  return true;
}

// Splits `list` at the next ", " or " : " separator. Returns the item and
// advances `list` past the separator; `done` is set after the last item.
std::string_view NextItem(std::string_view* list, bool* done) {
  const char* p = list->data();
  const size_t n = list->size();
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (c == ',' && i + 1 < n && p[i + 1] == ' ') {
      std::string_view item(p, i);
      list->remove_prefix(i + 2);
      return item;
    }
    if (c == ' ' && i + 2 < n && p[i + 1] == ':' && p[i + 2] == ' ') {
      std::string_view item(p, i);
      list->remove_prefix(i + 3);
      return item;
    }
  }
  std::string_view item = *list;
  list->remove_prefix(n);
  *done = true;
  return item;
}

bool IsEndpointName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || IsDigit(c) || (i > 0 && (c == '_' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool ParseLogDecimal(std::string_view s, double* out) {
  const size_t n = s.size();
  if (n == 0 || n > 24) return false;
  uint64_t mantissa = 0;
  int digits = 0;
  int frac = -1;  // digits after the '.', -1 before one
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    if (IsDigit(c)) {
      if (mantissa == 0 && c == '0') {
        // Leading zeros add no significant digit.
      } else {
        ++digits;
      }
      mantissa = mantissa * 10 + static_cast<uint64_t>(c - '0');
      if (frac >= 0) ++frac;
    } else if (c == '.' && frac < 0 && i > 0 && i + 1 < n) {
      frac = 0;
    } else {
      return false;
    }
  }
  if (digits > 15 || frac > 18) return false;
  // mantissa < 2^53 and 10^frac is exact, so one division rounds correctly.
  *out = frac > 0 ? static_cast<double>(mantissa) / kPow10[frac] : static_cast<double>(mantissa);
  return true;
}

bool ParseLogLine(std::string_view line, LogRecord* out, bool* foreign) {
  if (foreign) *foreign = false;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  // Exactly eight '|'-separated fields.
  std::string_view f[8];
  const char* p = line.data();
  const char* end = p + line.size();
  for (int i = 0; i < 7; ++i) {
    const char* bar = static_cast<const char*>(std::memchr(p, '|', static_cast<size_t>(end - p)));
    if (bar == nullptr) return false;
    f[i] = std::string_view(p, static_cast<size_t>(bar - p));
    p = bar + 1;
  }
  f[7] = std::string_view(p, static_cast<size_t>(end - p));
  if (std::memchr(f[7].data(), '|', f[7].size()) != nullptr) return false;

  if (!ParseLogDecimal(f[0], &out->time)) return false;
  if (!ParseStatus(f[2], &out->status)) return false;
  if (!ParseUnsigned(f[3], &out->bytes)) return false;
  if (!ParseLogDecimal(f[4], &out->request_time)) return false;

  // Upstream lists: parallel, one item per attempt.
  const std::string_view proxy_host = f[1];
  std::string_view addrs = f[5], statuses = f[6], times = f[7];
  out->n_attempts = 0;
  out->extra_attempts = 0;
  if (addrs.empty() || statuses.empty() || times.empty()) return false;
  if (addrs == "-") {
    if (statuses != "-" || times != "-") return false;
  } else {
    bool addrs_done = false, statuses_done = false, times_done = false;
    while (!addrs_done) {
      if (statuses_done || times_done) return false;  // lists of different lengths
      std::string_view addr = NextItem(&addrs, &addrs_done);
      std::string_view status = NextItem(&statuses, &statuses_done);
      std::string_view time = NextItem(&times, &times_done);
      if (addr.empty() || addr == "-") return false;
      UpstreamAttempt a;
      a.addr = addr;
      if (status != "-" && !ParseStatus(status, &a.status)) return false;
      if (time != "-" && !ParseLogDecimal(time, &a.response_time)) return false;
      if (addr == proxy_host) continue;  // "no live upstreams": nginx names the upstream
      if (out->n_attempts < LogRecord::kMaxAttempts) {
        out->attempts[out->n_attempts++] = a;
      } else {
        // Keep the final attempt last: drop the one before it.
        out->attempts[LogRecord::kMaxAttempts - 1] = a;
        ++out->extra_attempts;
      }
    }
    if (!statuses_done || !times_done) return false;
  }

  // Last, so that a malformed line is never reported as foreign.
  constexpr std::string_view kPrefix(kUpstreamPrefix);
  if (proxy_host.size() <= kPrefix.size() || proxy_host.compare(0, kPrefix.size(), kPrefix) != 0 ||
      !IsEndpointName(proxy_host.substr(kPrefix.size()))) {
    if (foreign && !proxy_host.empty() && proxy_host.find(' ') == std::string_view::npos) *foreign = true;
    return false;
  }
  out->endpoint = proxy_host.substr(kPrefix.size());
  return true;
}

}  // namespace reactor
