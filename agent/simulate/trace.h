// A load trace for `reactor simulate`: requests per second, read from a CSV
// of `second,requests` or from an nginx access log in the agent's own format
// (agent/metrics/log_format.h), detected from the first non-empty line.
//
// CSV: one `second,requests` a line; an optional header line whose first
// field is not a number (e.g. `second,requests`); blank lines and lines
// starting with '#' are skipped. Seconds are whole numbers >= 0 in ascending
// order (any origin, e.g. Unix time); a missing second had no requests.
// requests is a number >= 0.
//
// Access log: every line is parsed by ParseLogLine (the agent's tailer uses
// the same parser) and counted in the second of its $msec, relative to the
// earliest line; its upstream response times (when present) give that
// second's mean response time. Lines that are well formed but of no
// endpoint (nginx's own 503 without an instance) and, with `only_endpoint`,
// lines of other endpoints are skipped and counted. A malformed line is an
// error with its number.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/status.h"

namespace reactor {

struct TraceSecond {
  double requests = 0;
  /// Mean upstream response time of the second's requests (access logs
  /// only), seconds; nullopt when none was timed.
  std::optional<double> response;
};

struct Trace {
  enum class Format { kCsv, kAccessLog };
  Format format = Format::kCsv;
  std::vector<TraceSecond> seconds;  // second 0 is the trace's first
  int64_t first_second = 0;          // the first second as written (CSV) or its Unix second (log)
  uint64_t skipped_lines = 0;        // access log: lines of no endpoint or of another one
  /// Mean upstream response time over the whole trace; nullopt without any.
  std::optional<double> MeanResponse() const;
};

/// The longest trace accepted: 31 days of seconds.
constexpr int64_t kMaxTraceSeconds = 31LL * 24 * 3600;

/// Parses a trace from its text. InvalidArgument naming the line on bad
/// input: "line 3: requests '-2' is not a number >= 0", "line 1: unknown
/// trace format (expected `second,requests` or the agent's access-log
/// format)", "empty trace: no data lines". Never throws.
Result<Trace> ParseTrace(const std::string& text, const std::string& only_endpoint = "");

/// Reads and parses `path` ("-" = stdin). Unavailable when it cannot be read;
/// otherwise as ParseTrace, with the path in front of the message.
Result<Trace> ReadTraceFile(const std::string& path, const std::string& only_endpoint = "");

}  // namespace reactor
