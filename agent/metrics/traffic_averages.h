// From summed traffic to the rules' metrics: the window arithmetic and the
// averaging that MetricsCollector (one host's access log) and ClusterTraffic
// (every host's published counters) share, so that `rate`, `response`,
// `errors`... mean the same on one host and in a cluster. The metric
// definitions are in metrics_collector.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/common/clock.h"
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

/// Windows are clamped to [1 s, kMaxWindowSeconds].
inline constexpr int64_t kMaxWindowSeconds = 3600;

/// The buckets a window covers and the time they span.
struct WindowSpan {
  int64_t first_s = 0;  // first second summed; the last is ⌊now⌋
  double span_s = 1;    // seconds from the start of first_s to now, at least 1
};

/// Whole seconds back to ⌊now⌋−W+1, one more when less than half of the
/// current second has passed, but none before `complete_since_s` (buckets
/// before it may be missing). `window_ms` is clamped as above.
WindowSpan WindowSpanAt(int64_t now_ms, int64_t window_ms, int64_t complete_since_s);
/// The window clamped to [1 s, kMaxWindowSeconds], in whole seconds rounded up.
int64_t WindowSeconds(Duration window);

/// "[::1]:80" → "::1:80", the form CountEstablishedTo splits at its last ':'.
std::string BackendSocketAddress(const std::string& nginx_addr);

/// Fills m.backends, m.instances, m.total_rate and m.averages from `sums`
/// over `span_s` seconds: per-instance averages (÷ backends_in_service.size(),
/// or ÷ 1 without any), `active` from `active_of(backend)` summed over the
/// backends in service. Leaves m.window_s, unparsed and log_problem alone.
void AverageTraffic(const TrafficWindow::Sums& sums, double span_s, const std::vector<std::string>& backends_in_service,
                    const std::function<int(const std::string& backend)>& active_of, EndpointMetrics* m);

}  // namespace reactor
