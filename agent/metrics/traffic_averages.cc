#include "agent/metrics/traffic_averages.h"

#include <algorithm>

namespace reactor {

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

int64_t WindowSeconds(Duration window) {
  const int64_t window_ms = std::clamp<int64_t>(window.count(), 1000, kMaxWindowSeconds * 1000);
  return (window_ms + 999) / 1000;
}

WindowSpan WindowSpanAt(int64_t now_ms, int64_t window_ms, int64_t complete_since_s) {
  const int64_t window_s = WindowSeconds(Duration(window_ms));
  const int64_t now_s = FloorDiv(now_ms, 1000);
  WindowSpan w;
  w.first_s = now_s - window_s + 1 - (now_ms - now_s * 1000 < 500 ? 1 : 0);
  w.first_s = std::max(w.first_s, complete_since_s);
  w.span_s = static_cast<double>(std::max<int64_t>(now_ms - w.first_s * 1000, 1000)) / 1000.0;
  return w;
}

std::string BackendSocketAddress(const std::string& addr) {
  if (addr.size() > 2 && addr[0] == '[') {
    auto close = addr.find(']');
    if (close != std::string::npos) return addr.substr(1, close - 1) + addr.substr(close + 1);
  }
  return addr;
}

void AverageTraffic(const TrafficWindow::Sums& sums, double span_s, const std::vector<std::string>& backends_in_service,
                    const std::function<int(const std::string& backend)>& active_of, EndpointMetrics* m) {
  m->instances = static_cast<int>(backends_in_service.size());
  for (const auto& [addr, c] : sums.backends) {
    BackendMetrics& b = m->backends[addr];
    b.hits = c.hits;
    b.bytes = c.bytes;
    b.errors = c.errors;
    b.response_sum = c.response_sum;
    b.rate = static_cast<double>(c.hits) / span_s;
    b.response = c.timed ? c.response_sum / static_cast<double>(c.timed) : 0;
  }
  for (const std::string& addr : backends_in_service) m->backends[addr].in_service = true;
  int active_in_service = 0;
  for (auto& [addr, b] : m->backends) {
    b.active = active_of(addr);
    if (b.in_service) active_in_service += b.active;
  }

  const double n = backends_in_service.empty() ? 1.0 : static_cast<double>(backends_in_service.size());
  m->total_rate = static_cast<double>(sums.requests) / span_s;
  m->averages["rate"] = m->total_rate / n;
  m->averages["bytes"] = static_cast<double>(sums.bytes) / span_s / n;
  m->averages["errors"] = static_cast<double>(sums.errors) / span_s / n;
  m->averages["active"] = active_in_service / n;
  m->averages["response"] = sums.timed ? sums.response_sum / static_cast<double>(sums.timed) : 0;
  m->averages["response.p50"] = sums.Percentile(0.50);
  m->averages["response.p95"] = sums.Percentile(0.95);
  m->averages["response.p99"] = sums.Percentile(0.99);
}

}  // namespace reactor
