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
#include "agent/metrics/traffic_averages.h"
#include "agent/metrics/traffic_window.h"

namespace reactor {

class MetricsCollector {
 public:
  struct Options {
    LogTailer::Options tailer;  // start_at_end by default
  };
  static constexpr int64_t kMinRetentionSeconds = 10;
  static constexpr int64_t kMaxRetentionSeconds = kMaxWindowSeconds;
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

  /// What this host publishes for the cluster (agent/metrics/cluster_traffic.h):
  /// every endpoint's buckets of the seconds [⌊now⌋ − kMinRetentionSeconds,
  /// ⌊now⌋] on the monotonic clock, which the collector always keeps.
  struct Recent {
    bool started = false;  // false before the first Poll: nothing is known yet
    int64_t now_ms = 0;    // Clock::Now() of the snapshot
    int64_t wall_ms = 0;   // Clock::WallMillis() of the snapshot
    int64_t first_s = 0;   // ⌊now⌋ − kMinRetentionSeconds
    /// Lines before this second may be missing: the collector's start (when
    /// it begins at the end of the log), or far in the past.
    int64_t complete_since_s = 0;
    /// Endpoints with buckets in [first_s, ⌊now⌋], buckets ascending.
    std::map<std::string, std::vector<TrafficWindow::Bucket>> endpoints;
  };
  Recent RecentTraffic() const;

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
