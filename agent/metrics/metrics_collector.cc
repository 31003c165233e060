#include "agent/metrics/metrics_collector.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace reactor {

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int64_t Millis(TimePoint t) { return t.time_since_epoch().count(); }

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
  const int64_t window_s = WindowSeconds(window);

  EndpointMetrics m;
  m.window_s = static_cast<double>(window_ms) / 1000.0;
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
    const WindowSpan w = WindowSpanAt(now_ms, window_ms, t.complete_since_s);
    span_s = w.span_s;
    sums = t.window.Sum(w.first_s, now_s);
    m.unparsed = unparsed_ + tailer_.DroppedLines();
    m.log_problem = problem_;
  }
  AverageTraffic(
      sums, span_s, backends_in_service,
      [tcp](const std::string& addr) { return CountEstablishedTo(*tcp, BackendSocketAddress(addr)); }, &m);
  return m;
}

MetricsCollector::Recent MetricsCollector::RecentTraffic() const {
  std::lock_guard<std::mutex> lock(mu_);
  Recent r;
  if (!polled_) return r;
  r.started = true;
  r.now_ms = Millis(clock_.Now());
  r.wall_ms = clock_.WallMillis();
  const int64_t now_s = FloorDiv(r.now_ms, 1000);
  r.first_s = now_s - kMinRetentionSeconds;
  r.complete_since_s = started_s_;
  for (const auto& [name, t] : endpoints_) {
    std::vector<TrafficWindow::Bucket> buckets = t.window.Buckets(r.first_s, now_s);
    if (!buckets.empty()) r.endpoints.emplace(name, std::move(buckets));
  }
  return r;
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
