// One endpoint's recent traffic in per-second buckets: requests, bytes and
// 5xx answers of the endpoint, per-backend counters, and a log-scale
// histogram of upstream response times for percentiles. Buckets are sparse
// (a second without traffic has none), so an idle endpoint costs nothing.
// Not thread-safe: MetricsCollector guards it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/metrics/access_log_parser.h"

namespace reactor {

/// Log-scale bins of response time: bin 0 holds times under kMin (nginx
/// prints milliseconds, so mostly "0.000"), bin i >= 1 holds
/// [kMin·r^(i-1), kMin·r^i) with r = 2^(1/8), and the last bin everything
/// above ~200 s. ValueOf(bin) is the bin's geometric middle, within ±4.5% of
/// any time in it (0 for bin 0).
struct ResponseBins {
  static constexpr double kMin = 1e-4;
  static constexpr int kPerOctave = 8;
  static constexpr int kCount = 1 + kPerOctave * 21;
  static int BinOf(double seconds);
  static double ValueOf(int bin);
};

struct BackendCounters {
  uint64_t hits = 0;    // attempts
  uint64_t bytes = 0;   // bytes sent to clients from its answers
  uint64_t errors = 0;  // attempts with a 5xx status
  uint64_t timed = 0;   // attempts with a response time
  double response_sum = 0;
  bool operator==(const BackendCounters& o) const {
    return hits == o.hits && bytes == o.bytes && errors == o.errors && timed == o.timed &&
           response_sum == o.response_sum;
  }
};

class TrafficWindow {
 public:
  /// One second's traffic of the endpoint.
  struct Bucket {
    int64_t second = 0;
    uint64_t requests = 0;
    uint64_t bytes = 0;
    uint64_t errors = 0;
    std::vector<std::pair<uint16_t, uint32_t>> bins;  // sparse histogram: (bin, count), in first-seen order
    std::vector<std::pair<std::string, BackendCounters>> backends;  // in first-seen order
  };

  struct Sums {
    uint64_t requests = 0;  // log lines
    uint64_t bytes = 0;     // $bytes_sent
    uint64_t errors = 0;    // requests whose final $status is 5xx
    uint64_t timed = 0;     // attempts with a response time
    double response_sum = 0;
    std::array<uint64_t, ResponseBins::kCount> histogram{};
    std::map<std::string, BackendCounters> backends;

    /// The q-quantile (0 < q <= 1) of the response times, nearest rank on
    /// the histogram; 0 when there are none.
    double Percentile(double q) const;
    /// Adds one bucket (its second aside). Summing buckets in order of
    /// second gives exactly what Sum gives.
    void Add(const Bucket& b);
  };

  /// Attributes `r` (rules in access_log_parser.h) to the bucket of `second`.
  /// Seconds may arrive out of order.
  void Add(int64_t second, const LogRecord& r);
  /// Drops the buckets of seconds before `oldest`.
  void DropBefore(int64_t oldest);
  /// Sums the buckets of seconds in [first, last].
  Sums Sum(int64_t first, int64_t last) const;
  /// Copies of the buckets of seconds in [first, last], ascending.
  std::vector<Bucket> Buckets(int64_t first, int64_t last) const;
  bool empty() const { return buckets_.empty(); }
  size_t bucket_count() const { return buckets_.size(); }

 private:
  Bucket& BucketFor(int64_t second);

  std::deque<Bucket> buckets_;  // ascending by second
};

}  // namespace reactor
