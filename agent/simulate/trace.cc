#include "agent/simulate/trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string_view>

#include "agent/metrics/access_log_parser.h"

namespace reactor {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool ParseWhole(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseNumber(std::string_view s, double* out) {
  if (s.empty()) return false;
  // strtod on a copy: the program never changes the "C" locale.
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && std::isfinite(*out);
}

Status LineError(size_t line, const std::string& why) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + why);
}

// Calls f(line_number, line) for each line of text, stopping at a non-OK status.
template <typename F>
Status ForEachLine(const std::string& text, F f) {
  size_t number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    ++number;
    Status st = f(number, std::string_view(text).substr(pos, nl - pos));
    if (!st.ok()) return st;
    pos = nl + 1;
  }
  return Status::Ok();
}

bool Skippable(std::string_view line) {
  line = Trim(line);
  return line.empty() || line.front() == '#';
}

Result<Trace> ParseCsv(const std::string& text) {
  Trace trace;
  trace.format = Trace::Format::kCsv;
  bool first_data = true;
  bool header_allowed = true;
  int64_t last = 0;
  Status st = ForEachLine(text, [&](size_t n, std::string_view raw) -> Status {
    if (Skippable(raw)) return Status::Ok();
    std::string_view line = Trim(raw);
    size_t comma = line.find(',');
    if (comma == std::string_view::npos || line.find(',', comma + 1) != std::string_view::npos) {
      return LineError(n, "expected `second,requests`, got '" + std::string(line) + "'");
    }
    std::string_view sec_text = Trim(line.substr(0, comma));
    std::string_view req_text = Trim(line.substr(comma + 1));
    double dummy = 0;
    if (header_allowed && !ParseNumber(sec_text, &dummy)) {
      header_allowed = false;  // a header: `second,requests` or similar
      return Status::Ok();
    }
    header_allowed = false;
    int64_t second = 0;
    if (!ParseWhole(sec_text, &second) || second < 0) {
      return LineError(n, "second '" + std::string(sec_text) + "' is not a whole number >= 0");
    }
    double requests = 0;
    if (!ParseNumber(req_text, &requests) || requests < 0) {
      return LineError(n, "requests '" + std::string(req_text) + "' is not a number >= 0");
    }
    if (first_data) {
      trace.first_second = second;
      first_data = false;
    } else if (second <= last) {
      return LineError(n, "second " + std::to_string(second) + " does not follow " + std::to_string(last) +
                              " (seconds must ascend)");
    }
    if (second - trace.first_second >= kMaxTraceSeconds) {
      return LineError(n, "the trace is longer than " + std::to_string(kMaxTraceSeconds) + " seconds");
    }
    last = second;
    trace.seconds.resize(static_cast<size_t>(second - trace.first_second) + 1);
    trace.seconds.back().requests = requests;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  if (trace.seconds.empty()) return Status::InvalidArgument("empty trace: no `second,requests` lines");
  return trace;
}

Result<Trace> ParseAccessLog(const std::string& text, const std::string& only_endpoint) {
  struct Bucket {
    double requests = 0;
    double response_sum = 0;
    uint64_t timed = 0;
  };
  std::map<int64_t, Bucket> buckets;
  Trace trace;
  trace.format = Trace::Format::kAccessLog;
  Status st = ForEachLine(text, [&](size_t n, std::string_view line) -> Status {
    if (Trim(line).empty()) return Status::Ok();
    LogRecord r;
    bool foreign = false;
    if (!ParseLogLine(line, &r, &foreign)) {
      if (foreign) {
        trace.skipped_lines++;
        return Status::Ok();
      }
      return LineError(n, "not a line of the agent's access-log format (reactor metrics log-format)");
    }
    if (!only_endpoint.empty() && r.endpoint != only_endpoint) {
      trace.skipped_lines++;
      return Status::Ok();
    }
    Bucket& b = buckets[static_cast<int64_t>(std::floor(r.time))];
    b.requests += 1;
    for (int i = 0; i < r.n_attempts; ++i) {
      if (r.attempts[i].response_time >= 0) {
        b.response_sum += r.attempts[i].response_time;
        b.timed++;
      }
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  if (buckets.empty()) {
    return Status::InvalidArgument(only_endpoint.empty()
                                       ? "empty trace: no request lines"
                                       : "empty trace: no request lines of endpoint '" + only_endpoint + "'");
  }
  trace.first_second = buckets.begin()->first;
  int64_t span = buckets.rbegin()->first - trace.first_second + 1;
  if (span > kMaxTraceSeconds) {
    return Status::InvalidArgument("the log spans more than " + std::to_string(kMaxTraceSeconds) + " seconds");
  }
  trace.seconds.resize(static_cast<size_t>(span));
  for (const auto& [second, b] : buckets) {
    TraceSecond& s = trace.seconds[static_cast<size_t>(second - trace.first_second)];
    s.requests = b.requests;
    if (b.timed > 0) s.response = b.response_sum / static_cast<double>(b.timed);
  }
  return trace;
}

}  // namespace

std::optional<double> Trace::MeanResponse() const {
  double sum = 0, weight = 0;
  for (const auto& s : seconds) {
    if (s.response) {
      sum += *s.response * s.requests;
      weight += s.requests;
    }
  }
  if (weight <= 0) return std::nullopt;
  return sum / weight;
}

Result<Trace> ParseTrace(const std::string& text, const std::string& only_endpoint) {
  size_t first_line = 0;
  std::string_view first;
  Status found = ForEachLine(text, [&](size_t n, std::string_view line) -> Status {
    if (Skippable(line)) return Status::Ok();
    first_line = n;
    first = line;
    return Status::Unavailable("found");  // stop here
  });
  if (found.ok()) return Status::InvalidArgument("empty trace: no data lines");
  LogRecord r;
  bool foreign = false;
  if (ParseLogLine(first, &r, &foreign) || foreign) return ParseAccessLog(text, only_endpoint);
  std::string_view t = Trim(first);
  size_t comma = t.find(',');
  if (comma != std::string_view::npos && t.find(',', comma + 1) == std::string_view::npos &&
      first.find('|') == std::string_view::npos) {
    return ParseCsv(text);
  }
  return LineError(first_line,
                   "unknown trace format (expected `second,requests` lines or the agent's access-log format)");
}

Result<Trace> ReadTraceFile(const std::string& path, const std::string& only_endpoint) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::Unavailable(path + ": cannot be read");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Status::Unavailable(path + ": read failed");
    text = ss.str();
  }
  auto trace = ParseTrace(text, only_endpoint);
  if (!trace.ok()) return trace.status().WithContext(path);
  return trace;
}

}  // namespace reactor
