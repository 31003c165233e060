#include "agent/metrics/traffic_window.h"

#include <algorithm>
#include <cmath>

namespace reactor {

int ResponseBins::BinOf(double seconds) {
  if (!(seconds >= kMin)) return 0;  // also NaN
  double i = 1 + std::floor(kPerOctave * std::log2(seconds / kMin));
  return i >= kCount - 1 ? kCount - 1 : static_cast<int>(i);
}

double ResponseBins::ValueOf(int bin) {
  if (bin <= 0) return 0;
  return kMin * std::exp2((bin - 0.5) / kPerOctave);
}

double TrafficWindow::Sums::Percentile(double q) const {
  uint64_t total = 0;
  for (uint64_t c : histogram) total += c;
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (int b = 0; b < ResponseBins::kCount; ++b) {
    seen += histogram[b];
    if (seen >= rank) return ResponseBins::ValueOf(b);
  }
  return ResponseBins::ValueOf(ResponseBins::kCount - 1);
}

TrafficWindow::Bucket& TrafficWindow::BucketFor(int64_t second) {
  // Lines come almost in order: look from the newest end.
  if (buckets_.empty() || buckets_.back().second < second) {
    buckets_.emplace_back();
    buckets_.back().second = second;
    return buckets_.back();
  }
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), second,
                             [](const Bucket& b, int64_t s) { return b.second < s; });
  if (it != buckets_.end() && it->second == second) return *it;
  it = buckets_.insert(it, Bucket());
  it->second = second;
  return *it;
}

void TrafficWindow::Add(int64_t second, const LogRecord& r) {
  Bucket& b = BucketFor(second);
  ++b.requests;
  b.bytes += r.bytes;
  if (IsServerError(r.status)) ++b.errors;
  for (int i = 0; i < r.n_attempts; ++i) {
    const UpstreamAttempt& a = r.attempts[i];
    auto be = std::find_if(b.backends.begin(), b.backends.end(), [&](const auto& p) { return p.first == a.addr; });
    if (be == b.backends.end()) {
      b.backends.emplace_back(std::string(a.addr), BackendCounters());
      be = b.backends.end() - 1;
    }
    BackendCounters& c = be->second;
    ++c.hits;
    if (IsServerError(AttemptStatus(r, i))) ++c.errors;
    if (i == r.n_attempts - 1) c.bytes += r.bytes;
    if (a.response_time >= 0) {
      ++c.timed;
      c.response_sum += a.response_time;
      const uint16_t bin = static_cast<uint16_t>(ResponseBins::BinOf(a.response_time));
      auto h = std::find_if(b.bins.begin(), b.bins.end(), [&](const auto& p) { return p.first == bin; });
      if (h == b.bins.end()) {
        b.bins.emplace_back(bin, 1);
      } else {
        ++h->second;
      }
    }
  }
}

void TrafficWindow::DropBefore(int64_t oldest) {
  while (!buckets_.empty() && buckets_.front().second < oldest) buckets_.pop_front();
}

void TrafficWindow::Sums::Add(const Bucket& b) {
  requests += b.requests;
  bytes += b.bytes;
  errors += b.errors;
  for (const auto& [bin, count] : b.bins) {
    if (bin < ResponseBins::kCount) histogram[bin] += count;
  }
  for (const auto& [addr, c] : b.backends) {
    BackendCounters& t = backends[addr];
    t.hits += c.hits;
    t.bytes += c.bytes;
    t.errors += c.errors;
    t.timed += c.timed;
    t.response_sum += c.response_sum;
    timed += c.timed;
    response_sum += c.response_sum;
  }
}

TrafficWindow::Sums TrafficWindow::Sum(int64_t first, int64_t last) const {
  Sums s;
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), first,
                             [](const Bucket& b, int64_t sec) { return b.second < sec; });
  for (; it != buckets_.end() && it->second <= last; ++it) s.Add(*it);
  return s;
}

std::vector<TrafficWindow::Bucket> TrafficWindow::Buckets(int64_t first, int64_t last) const {
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), first,
                             [](const Bucket& b, int64_t sec) { return b.second < sec; });
  std::vector<Bucket> out;
  for (; it != buckets_.end() && it->second <= last; ++it) out.push_back(*it);
  return out;
}

}  // namespace reactor
