#include "agent/common/units.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace reactor {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

namespace {

// Parses a non-negative decimal number (digits with at most one '.') that
// makes up the whole of `s`.
bool ParseNonNegative(std::string_view s, double* out) {
  if (s.empty() || s.size() > 32) return false;
  bool dot = false, digit = false;
  for (char c : s) {
    if (c == '.') {
      if (dot) return false;
      dot = true;
    } else if (c >= '0' && c <= '9') {
      digit = true;
    } else {
      return false;
    }
  }
  if (!digit) return false;
  *out = std::strtod(std::string(s).c_str(), nullptr);
  return std::isfinite(*out);
}

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  std::string_view s = Trim(text);
  double scale = 1000.0;  // bare number: seconds
  if (s.size() > 2 && s.substr(s.size() - 2) == "ms") {
    scale = 1.0;
    s.remove_suffix(2);
  } else if (!s.empty() && s.back() == 's') {
    s.remove_suffix(1);
  } else if (!s.empty() && s.back() == 'm') {
    scale = 60000.0;
    s.remove_suffix(1);
  } else if (!s.empty() && s.back() == 'h') {
    scale = 3600000.0;
    s.remove_suffix(1);
  }
  double v = 0;
  if (!ParseNonNegative(s, &v) || v * scale > 1e12) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a duration (e.g. 200ms, 1s, 5m)");
  }
  return Duration(static_cast<int64_t>(std::llround(v * scale)));
}

std::string FormatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Result<uint64_t> ParseSize(std::string_view text) {
  std::string_view s = Trim(text);
  double scale = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k':
      case 'K': scale = 1024.0; break;
      case 'm':
      case 'M': scale = 1024.0 * 1024; break;
      case 'g':
      case 'G': scale = 1024.0 * 1024 * 1024; break;
      default: break;
    }
    if (scale != 1) s.remove_suffix(1);
  }
  double v = 0;
  if (!ParseNonNegative(s, &v) || v * scale > 1.0e15) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a size in bytes (e.g. 512m, 1g)");
  }
  return static_cast<uint64_t>(std::llround(v * scale));
}

Result<int64_t> ParseInt(std::string_view text, int64_t lo, int64_t hi) {
  std::string_view s = Trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not an integer");
  }
  if (v < lo || v > hi) {
    return Status::InvalidArgument(std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "]");
  }
  return v;
}

Result<bool> ParseBool(std::string_view text) {
  std::string_view s = Trim(text);
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  return Status::InvalidArgument("'" + std::string(text) + "' is not a boolean (true/false)");
}

Result<PortRange> ParsePortRange(std::string_view text) {
  std::string_view s = Trim(text);
  auto dash = s.find('-');
  if (dash == std::string_view::npos) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a port range (e.g. 30000-39999)");
  }
  auto lo = ParseInt(s.substr(0, dash), 1, 65535);
  auto hi = ParseInt(s.substr(dash + 1), 1, 65535);
  if (!lo.ok() || !hi.ok() || *lo > *hi) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a port range lo-hi within 1-65535");
  }
  return PortRange{static_cast<int>(*lo), static_cast<int>(*hi)};
}

}  // namespace reactor
