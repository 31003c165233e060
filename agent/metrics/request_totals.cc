#include "agent/metrics/request_totals.h"

namespace reactor {

void RequestTotals::Add(const LogRecord& r) {
  ++requests;
  if (r.status >= 100 && r.status <= 599) ++by_class[static_cast<size_t>(r.status / 100 - 1)];
  bytes += r.bytes;
  const double t = r.request_time >= 0 ? r.request_time : 0;
  duration_sum += t;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (t <= kBuckets[i]) {
      ++buckets[i];
      break;
    }
  }
}

uint64_t RequestTotals::CumulativeBucket(size_t i) const {
  uint64_t n = 0;
  for (size_t j = 0; j <= i && j < buckets.size(); ++j) n += buckets[j];
  return n;
}

}  // namespace reactor
