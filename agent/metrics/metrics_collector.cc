#include "agent/metrics/metrics_collector.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace reactor {

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int64_t Millis(TimePoint t) { return t.time_since_epoch().count(); }

// "[::1]:80" → "::1:80", the form CountEstablishedTo splits at its last ':'.
std::string SocketAddress(const std::string& addr) {
  if (addr.size() > 2 && addr[0] == '[') {
    auto close = addr.find(']');
    if (close != std::string::npos) return addr.substr(1, close - 1) + addr.substr(close + 1);
  }
  return addr;
}

}  // namespace

MetricsCollector::MetricsCollector(std::string access_log_path, Clock& clock, std::unique_ptr<FileSystem> fs)
    : MetricsCollector(std::move(access_log_path), clock, std::move(fs), Options()) {}

MetricsCollector::MetricsCollector(std::string access_log_path, Clock& clock, std::unique_ptr<FileSystem> fs,
                                   Options options)
    : clock_(clock),
      fs_(fs ? std::move(fs) : std::make_unique<RealFileSystem>()),
      history_before_start_(!options.tailer.start_at_end),
      tailer_(std::move(access_log_path), *fs_, options.tailer) {}

void MetricsCollector::MarkStarted(int64_t now_s) {
  if (polled_) return;
  // Lines before the first read are skipped when starting at the end of the
  // log; otherwise the log's whole history is read.
  started_s_ = history_before_start_ ? std::numeric_limits<int64_t>::min() / 2 : now_s;
  polled_ = true;
}

MetricsCollector::Tracked& MetricsCollector::Track(std::string_view endpoint, int64_t now_s) {
  auto it = endpoints_.find(endpoint);
  if (it != endpoints_.end()) return it->second;
  Tracked& t = endpoints_[std::string(endpoint)];
  t.last_query = clock_.Now();
  // Before its first line or query this endpoint had no traffic since the
  // start, unless it was forgotten: then only its last kMinRetention is known.
  t.complete_since_s = std::max(started_s_, now_s - kMinRetentionSeconds);
  return t;
}

void MetricsCollector::Poll() {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_.Now();
  const int64_t now_ms = Millis(now);
  const int64_t now_s = FloorDiv(now_ms, 1000);
  const int64_t wall_ms = clock_.WallMillis();
  MarkStarted(now_s);
  tailer_.ReadNewLines([&](std::string_view line) {
    LogRecord r;
    bool foreign = false;
    if (!ParseLogLine(line, &r, &foreign)) {
      ++(foreign ? foreign_ : unparsed_);
      return;
    }
    // $msec → the monotonic second it happened in (never in the future).
    const int64_t line_ms = static_cast<int64_t>(std::llround(r.time * 1000));
    const int64_t age_ms = std::max<int64_t>(0, wall_ms - line_ms);
    const int64_t second = FloorDiv(now_ms - age_ms, 1000);
    auto totals = totals_.find(r.endpoint);
    if (totals == totals_.end()) totals = totals_.emplace(std::string(r.endpoint), RequestTotals()).first;
    totals->second.Add(r);
    Tracked& t = Track(r.endpoint, now_s);
    if (second < now_s - t.retention_s) return;  // older than anything kept
    t.window.Add(second, r);
  });
  problem_ = tailer_.Problem();

  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    Tracked& t = it->second;
    t.window.DropBefore(now_s - t.retention_s);
    t.complete_since_s = std::max(t.complete_since_s, now_s - t.retention_s);
    if (t.window.empty() && now - t.last_query > kForgetAfter) {
      it = endpoints_.erase(it);
    } else {
      ++it;
    }
  }
}

EndpointMetrics MetricsCollector::Metrics(const std::string& endpoint, Duration window,
                                          const std::vector<std::string>& backends_in_service,
                                          const std::vector<TcpSocket>* tcp) {
  std::vector<TcpSocket> own_table;
  if (tcp == nullptr) {
    own_table = ReadTcpTable();
    tcp = &own_table;
  }
  const int64_t window_ms = std::clamp<int64_t>(window.count(), 1000, kMaxRetentionSeconds * 1000);
  const int64_t window_s = (window_ms + 999) / 1000;

  EndpointMetrics m;
  m.window_s = static_cast<double>(window_ms) / 1000.0;
  m.instances = static_cast<int>(backends_in_service.size());
  TrafficWindow::Sums sums;
  double span_s = 1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const TimePoint now = clock_.Now();
    const int64_t now_ms = Millis(now);
    const int64_t now_s = FloorDiv(now_ms, 1000);
    MarkStarted(now_s);
    Tracked& t = Track(endpoint, now_s);
    t.last_query = now;
    t.retention_s = std::max(t.retention_s, std::min(kMaxRetentionSeconds, window_s + 2));
    // Whole seconds back to ⌊now⌋−W+1, one more early in the current second.
    int64_t first = now_s - window_s + 1 - (now_ms - now_s * 1000 < 500 ? 1 : 0);
    first = std::max(first, t.complete_since_s);
    span_s = static_cast<double>(std::max<int64_t>(now_ms - first * 1000, 1000)) / 1000.0;
    sums = t.window.Sum(first, now_s);
    m.unparsed = unparsed_ + tailer_.DroppedLines();
    m.log_problem = problem_;
  }

  for (const auto& [addr, c] : sums.backends) {
    BackendMetrics& b = m.backends[addr];
    b.hits = c.hits;
    b.bytes = c.bytes;
    b.errors = c.errors;
    b.response_sum = c.response_sum;
    b.rate = static_cast<double>(c.hits) / span_s;
    b.response = c.timed ? c.response_sum / static_cast<double>(c.timed) : 0;
  }
  for (const std::string& addr : backends_in_service) m.backends[addr].in_service = true;
  int active_in_service = 0;
  for (auto& [addr, b] : m.backends) {
    b.active = CountEstablishedTo(*tcp, SocketAddress(addr));
    if (b.in_service) active_in_service += b.active;
  }

  const double n = backends_in_service.empty() ? 1.0 : static_cast<double>(backends_in_service.size());
  m.total_rate = static_cast<double>(sums.requests) / span_s;
  m.averages["rate"] = m.total_rate / n;
  m.averages["bytes"] = static_cast<double>(sums.bytes) / span_s / n;
  m.averages["errors"] = static_cast<double>(sums.errors) / span_s / n;
  m.averages["active"] = active_in_service / n;
  m.averages["response"] = sums.timed ? sums.response_sum / static_cast<double>(sums.timed) : 0;
  m.averages["response.p50"] = sums.Percentile(0.50);
  m.averages["response.p95"] = sums.Percentile(0.95);
  m.averages["response.p99"] = sums.Percentile(0.99);
  return m;
}

uint64_t MetricsCollector::Unparsed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unparsed_ + tailer_.DroppedLines();
}

uint64_t MetricsCollector::Foreign() const {
  std::lock_guard<std::mutex> lock(mu_);
  return foreign_;
}

std::string MetricsCollector::LogProblem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return problem_;
}

std::map<std::string, RequestTotals> MetricsCollector::Totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {totals_.begin(), totals_.end()};
}

size_t MetricsCollector::TrackedEndpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_.size();
}

}  // namespace reactor
