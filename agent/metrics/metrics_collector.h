// Turns nginx's access log into per-endpoint metrics (SPEC §5, §6): tails
// the log, parses each line, attributes it by endpoint and backend into
// per-second buckets, and answers "what were the metrics of endpoint E over
// the last W, with these instances in service".
//
// Metric definitions (EndpointMetrics::averages), over the window W:
//   rate     requests/s            (log lines of E, incl. ones no backend served)
//   bytes    bytes sent/s          ($bytes_sent)
//   errors   5xx responses/s       (requests whose final $status is 5xx)
//   active   open connections      (ESTABLISHED now to the in-service backends)
//   response mean upstream response time, s, over the attempts that have one
//   response.p50/.p95/.p99         the same attempts' percentiles, s, from a
//                                  log-scale histogram (±4.5%; ResponseBins)
// rate, bytes, errors and active are per-instance averages: the endpoint's
// total ÷ n, n = backends_in_service.size() (SPEC §5: not weighted by hits).
// With n = 0 they are the totals (divided by 1): the demand the endpoint
// sees, which the scaler treats specially anyway. response and its
// percentiles are per request already and are not divided. With no traffic
// every metric is 0.
//
// Time: a line counts in the second nginx logged it ($msec), mapped onto the
// monotonic clock by its age (WallMillis − msec), so late or batched reads
// land in the right second; a line from the future counts now. The window is
// the buckets from second ⌊now⌋−W+1 (one more when less than half of the
// current second has passed) to now, divided by the time they span: an
// unbiased rate that reacts to a load step within one poll.
//
// Memory: each endpoint keeps max(kMinRetention, largest window asked + 2 s)
// of buckets (at most an hour); an endpoint nobody asked about for
// kForgetAfter and without traffic is dropped.
//
// Thread-safety: every method is thread-safe (one mutex). Poll is meant for
// the agent loop; Metrics may also be called from API threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/metrics/log_file_system.h"
#include "agent/metrics/log_tailer.h"
#include "agent/metrics/request_totals.h"
#include "agent/metrics/tcp_table.h"
#include "agent/metrics/traffic_window.h"

namespace reactor {

/// One backend's traffic over the window.
struct BackendMetrics {
  uint64_t hits = 0;        // attempts
  uint64_t bytes = 0;       // bytes of the answers it gave
  uint64_t errors = 0;      // attempts answered 5xx (or final and failed)
  double response_sum = 0;  // seconds, over its attempts with a time
  double rate = 0;          // hits/s
  double response = 0;      // mean response time, s (0 without timed attempts)
  int active = 0;           // ESTABLISHED connections to it now
  bool in_service = false;  // listed in backends_in_service
};

struct EndpointMetrics {
  /// "rate", "response", "bytes", "errors", "active", "response.p50",
  /// "response.p95", "response.p99": always all present (see above).
  std::map<std::string, double> averages;
  /// Every backend seen in the window, and every backend in service.
  std::map<std::string, BackendMetrics> backends;
  int instances = 0;        // backends_in_service.size()
  double window_s = 0;      // the window asked for
  double total_rate = 0;    // the endpoint's requests/s, not divided
  uint64_t unparsed = 0;    // Unparsed() at the time of the call
  std::string log_problem;  // LogProblem() at the time of the call
};

class MetricsCollector {
 public:
  struct Options {
    LogTailer::Options tailer;  // start_at_end by default
  };
  static constexpr int64_t kMinRetentionSeconds = 10;
  static constexpr int64_t kMaxRetentionSeconds = 3600;
  static constexpr Duration kForgetAfter = Duration(10 * 60 * 1000);

  /// Follows `access_log_path` through `fs` (the real filesystem when null).
  /// `clock` must outlive the collector.
  MetricsCollector(std::string access_log_path, Clock& clock, std::unique_ptr<FileSystem> fs = nullptr);
  MetricsCollector(std::string access_log_path, Clock& clock, std::unique_ptr<FileSystem> fs, Options options);

  /// Reads the lines appended since the last call (at most 4 MiB; a backlog
  /// is read over several calls) and files them by endpoint and backend;
  /// drops buckets and endpoints past their retention.
  void Poll();

  /// The metrics of `endpoint` over the last `window` (clamped to [1 s, 1 h]).
  /// `tcp`: the socket table for `active`; null reads /proc/net/tcp{,6}.
  /// Pass the same table for every endpoint of one round.
  EndpointMetrics Metrics(const std::string& endpoint, Duration window,
                          const std::vector<std::string>& backends_in_service,
                          const std::vector<TcpSocket>* tcp = nullptr);

  /// Malformed lines since start (lines nginx could not have written in
  /// kLogFormat, and overlong ones).
  uint64_t Unparsed() const;
  /// Well-formed lines of no endpoint (e.g. $proxy_host "-": nginx's own 503
  /// when an endpoint has no instance), since start.
  uint64_t Foreign() const;
  /// Why the access log cannot be read ("" when it can).
  std::string LogProblem() const;
  /// Every endpoint's cumulative counters since start (for /metrics). An
  /// endpoint appears with its first request and is never dropped.
  std::map<std::string, RequestTotals> Totals() const;
  /// Number of endpoints with buckets or recent queries (for tests and memory checks).
  size_t TrackedEndpoints() const;

 private:
  struct Tracked {
    TrafficWindow window;
    TimePoint last_query;
    int64_t retention_s = kMinRetentionSeconds;
    int64_t complete_since_s = 0;  // buckets before this second may be missing
  };
  Tracked& Track(std::string_view endpoint, int64_t now_s);
  void MarkStarted(int64_t now_s);

  Clock& clock_;
  // Constant after construction.
  const std::unique_ptr<FileSystem> fs_;
  const bool history_before_start_;  // the tailer reads the log from its start

  mutable std::mutex mu_;
  // State below is protected by mu_.
  LogTailer tailer_;
  std::map<std::string, Tracked, std::less<>> endpoints_;
  std::map<std::string, RequestTotals, std::less<>> totals_;
  int64_t started_s_ = 0;
  bool polled_ = false;
  uint64_t unparsed_ = 0;
  uint64_t foreign_ = 0;
  std::string problem_;
};

}  // namespace reactor
