// One line of the agent's access-log format (log_format.h) into a LogRecord:
// no regex, no heap allocation; every string in the record is a view into the
// line. The hot path of `reactor metrics parse` and of the tailer (SPEC §6, §11).
//
// Upstream lists: `$upstream_addr`, `$upstream_status` and
// `$upstream_response_time` are parallel lists, one item per attempt; ", "
// separates the attempts within one upstream group and " : " the groups after
// an internal redirect. The parser flattens the groups into one attempt list
// in order; the last attempt is the one whose answer the client got. "-" is a
// missing item (status 0, response time < 0); an upstream_addr of "-" means
// nginx did not proxy (no attempts). An address equal to $proxy_host (nginx's
// "no live upstreams") is no backend: the item is dropped.
#pragma once

#include <cstdint>
#include <string_view>

namespace reactor {

struct UpstreamAttempt {
  std::string_view addr;      // "ip:port" as nginx printed it
  int status = 0;             // HTTP status; 0 = missing ("-")
  double response_time = -1;  // seconds; < 0 = missing ("-")
};

struct LogRecord {
  static constexpr int kMaxAttempts = 8;

  double time = 0;            // $msec: seconds since the epoch
  std::string_view endpoint;  // $proxy_host without the "reactor_" prefix
  int status = 0;             // $status: the status the client got
  uint64_t bytes = 0;         // $bytes_sent
  double request_time = 0;    // $request_time, seconds
  UpstreamAttempt attempts[kMaxAttempts];
  int n_attempts = 0;  // attempts[0, n_attempts) are set
  /// Attempts beyond kMaxAttempts: middle ones are dropped and only counted
  /// here, so attempts[n_attempts - 1] is always the final attempt.
  int extra_attempts = 0;
};

// Attribution (the same for the offline totals and the live window):
// - every attempt is a hit of its backend, and its response time (when
//   present) adds to that backend's response sum;
// - an attempt whose status is 5xx is an error of its backend; the final
//   attempt carries the final status: when its own status is missing, the
//   request's $status is used (FinalAttemptStatus);
// - $bytes_sent goes to the final attempt's backend (it sent the answer).

/// The status attempt `i` is judged by: its $upstream_status, or for the final
/// attempt with a missing one, the request's $status.
inline int AttemptStatus(const LogRecord& r, int i) {
  const int s = r.attempts[i].status;
  return s == 0 && i == r.n_attempts - 1 ? r.status : s;
}
inline bool IsServerError(int status) { return status >= 500 && status <= 599; }

/// Parses one line (without its '\n'; a trailing '\r' is ignored) into `out`.
/// False when the line is malformed, or when it is well formed but foreign:
/// its $proxy_host is not "reactor_<endpoint name>" (e.g. "-" for nginx's own
/// 503 when an endpoint has no instance). `foreign`, if given, tells which.
/// `out` is unspecified after false. Never throws; thread-safe.
bool ParseLogLine(std::string_view line, LogRecord* out, bool* foreign = nullptr);

/// A decimal without sign or exponent ("12", "0.004", "1700000000.123"),
/// correctly rounded; its digits (without leading zeros and the point) must
/// form an integer below 2^53, which 15 significant digits always do.
/// False on anything else.
bool ParseLogDecimal(std::string_view text, double* out);

}  // namespace reactor
