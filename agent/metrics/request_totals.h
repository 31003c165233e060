// Cumulative request counters of one endpoint since the agent started, for
// Prometheus (/metrics): requests by status class, bytes sent, and a
// histogram of $request_time with fixed buckets, so that rates and
// percentiles can be computed (and aggregated across hosts) by the scraper.
// Not thread-safe: MetricsCollector guards it.
#pragma once

#include <array>
#include <cstdint>

#include "agent/metrics/access_log_parser.h"

namespace reactor {

struct RequestTotals {
  /// Upper bounds (seconds, inclusive) of the duration histogram; +Inf is implicit.
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  uint64_t requests = 0;
  std::array<uint64_t, 5> by_class{};               // 1xx .. 5xx; other statuses (0, 600+) are counted in requests only
  uint64_t bytes = 0;                               // $bytes_sent
  std::array<uint64_t, kBuckets.size()> buckets{};  // per bucket (not cumulative)
  double duration_sum = 0;                          // seconds

  void Add(const LogRecord& r);
  /// Requests with $request_time <= kBuckets[i] (cumulative, as Prometheus wants).
  uint64_t CumulativeBucket(size_t i) const;
};

}  // namespace reactor
