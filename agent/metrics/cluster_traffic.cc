#include "agent/metrics/cluster_traffic.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <set>
#include <string_view>

#include "agent/store/keys.h"

namespace reactor {

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int64_t Millis(TimePoint t) { return t.time_since_epoch().count(); }

// A wall clock stepped by NTP moves the offset; a few ms of jitter between
// two readings of the two clocks must not (the record would change each time).
void TrackOffset(int64_t wall_ms, int64_t mono_ms, int64_t* offset, bool* known) {
  const int64_t now = wall_ms - mono_ms;
  if (!*known || std::abs(now - *offset) > 250) {
    *offset = now;
    *known = true;
  }
}

bool SameCounts(const TrafficWindow::Bucket& a, const TrafficWindow::Bucket& b) {
  return a.requests == b.requests && a.bytes == b.bytes && a.errors == b.errors && a.bins == b.bins &&
         a.backends == b.backends;
}

Status Bad(const std::string& why) { return Status::InvalidArgument("traffic counter record: " + why); }

// An endpoint's collector is told nothing about far-away pasts: a start
// before this is "everything is known" (the log was read from its start).
constexpr int64_t kFarPastSeconds = -(int64_t{1} << 40);

void AppendNumber(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
void AppendNumber(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
void AppendNumber(std::string* out, double v) {
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back as the same double
  out->append(buf, r.ptr);
}

// A backend's name as one field: nginx prints "ip:port" (or "unix:/path"),
// which holds no space; anything else is made to fit rather than break the record.
std::string Field(const std::string& addr) {
  std::string out = addr.empty() ? "-" : addr;
  for (char& c : out) {
    if (c == ' ' || c == '\n') c = '_';
  }
  return out;
}

// Splits one line into space-separated tokens (no empty ones).
class Tokens {
 public:
  explicit Tokens(std::string_view line) : rest_(line) {}
  bool Next(std::string_view* token) {
    if (rest_.empty()) return false;
    const size_t space = rest_.find(' ');
    *token = rest_.substr(0, space);
    rest_ = space == std::string_view::npos ? std::string_view() : rest_.substr(space + 1);
    return !token->empty();
  }
  bool Done() const { return rest_.empty(); }
  template <typename T>
  bool Number(T* out) {
    std::string_view t;
    if (!Next(&t)) return false;
    auto r = std::from_chars(t.data(), t.data() + t.size(), *out);
    return r.ec == std::errc() && r.ptr == t.data() + t.size();
  }
  bool Word(std::string* out) {
    std::string_view t;
    if (!Next(&t)) return false;
    out->assign(t);
    return true;
  }

 private:
  std::string_view rest_;
};

}  // namespace

std::string EncodeHostTraffic(const HostTraffic& t) {
  std::string out = "T1 ";
  AppendNumber(&out, t.at_ms);
  out += ' ';
  AppendNumber(&out, t.since_ms);
  out += ' ';
  AppendNumber(&out, t.from_ms);
  out += ' ';
  AppendNumber(&out, t.to_ms);
  out += '\n';
  for (const auto& [addr, n] : t.active) {
    out += "A " + Field(addr) + ' ';
    AppendNumber(&out, static_cast<int64_t>(n));
    out += '\n';
  }
  for (const auto& s : t.seconds) {
    out += "S ";
    AppendNumber(&out, s.start_ms);
    out += ' ';
    AppendNumber(&out, s.counts.requests);
    out += ' ';
    AppendNumber(&out, s.counts.bytes);
    out += ' ';
    AppendNumber(&out, s.counts.errors);
    out += "\nH";
    for (const auto& [bin, count] : s.counts.bins) {
      out += ' ';
      AppendNumber(&out, static_cast<uint64_t>(bin));
      out += ' ';
      AppendNumber(&out, static_cast<uint64_t>(count));
    }
    out += '\n';
    for (const auto& [addr, c] : s.counts.backends) {
      out += "B " + Field(addr) + ' ';
      AppendNumber(&out, c.hits);
      out += ' ';
      AppendNumber(&out, c.bytes);
      out += ' ';
      AppendNumber(&out, c.errors);
      out += ' ';
      AppendNumber(&out, c.timed);
      out += ' ';
      AppendNumber(&out, c.response_sum);
      out += '\n';
    }
  }
  return out;
}

Result<HostTraffic> DecodeHostTraffic(const std::string& value) {
  HostTraffic t;
  std::string_view rest(value);
  bool header = false;
  bool histogram_due = false;  // an S line was read; its H line comes next
  int line_no = 0;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return Bad("line " + std::to_string(line_no + 1) + " does not end in a newline");
    const std::string_view line = rest.substr(0, nl);
    rest = rest.substr(nl + 1);
    ++line_no;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    Tokens tok(line);
    std::string_view kind;
    if (!tok.Next(&kind)) return Bad(where + "empty");
    if (!header) {
      if (kind != "T1") return Bad(where + "not a version-1 record (want \"T1 at since from to\")");
      if (!tok.Number(&t.at_ms) || !tok.Number(&t.since_ms) || !tok.Number(&t.from_ms) || !tok.Number(&t.to_ms) ||
          !tok.Done()) {
        return Bad(where + "want \"T1 at since from to\" (integers)");
      }
      if (t.from_ms > t.to_ms) return Bad(where + "from is after to");
      header = true;
      continue;
    }
    if (histogram_due) {
      if (kind != "H") return Bad(where + "want the H line of the second before");
      uint64_t bin = 0;
      uint64_t count = 0;
      while (!tok.Done()) {
        if (!tok.Number(&bin) || !tok.Number(&count) || bin >= static_cast<uint64_t>(ResponseBins::kCount) ||
            count > std::numeric_limits<uint32_t>::max()) {
          return Bad(where + "want \"H bin count ...\" with bins below " + std::to_string(ResponseBins::kCount));
        }
        t.seconds.back().counts.bins.emplace_back(static_cast<uint16_t>(bin), static_cast<uint32_t>(count));
      }
      histogram_due = false;
      continue;
    }
    if (kind == "A") {
      std::string addr;
      int64_t n = 0;
      if (!tok.Word(&addr) || !tok.Number(&n) || !tok.Done() || n < 0 || n > std::numeric_limits<int>::max()) {
        return Bad(where + "want \"A backend connections\"");
      }
      if (!t.seconds.empty()) return Bad(where + "A lines come before the seconds");
      t.active[addr] = static_cast<int>(n);
    } else if (kind == "S") {
      HostTraffic::Second s;
      if (!tok.Number(&s.start_ms) || !tok.Number(&s.counts.requests) || !tok.Number(&s.counts.bytes) ||
          !tok.Number(&s.counts.errors) || !tok.Done()) {
        return Bad(where + "want \"S start requests bytes errors\" (counts are not negative)");
      }
      if (!t.seconds.empty() && s.start_ms <= t.seconds.back().start_ms) return Bad(where + "seconds are not in order");
      t.seconds.push_back(std::move(s));
      histogram_due = true;
    } else if (kind == "B") {
      if (t.seconds.empty()) return Bad(where + "a B line before any S line");
      std::pair<std::string, BackendCounters> b;
      if (!tok.Word(&b.first) || !tok.Number(&b.second.hits) || !tok.Number(&b.second.bytes) ||
          !tok.Number(&b.second.errors) || !tok.Number(&b.second.timed) || !tok.Number(&b.second.response_sum) ||
          !tok.Done()) {
        return Bad(where + "want \"B backend hits bytes errors timed response_sum\"");
      }
      t.seconds.back().counts.backends.push_back(std::move(b));
    } else {
      return Bad(where + "unknown line kind '" + std::string(kind) + "'");
    }
  }
  if (!header) return Bad("empty");
  if (histogram_due) return Bad("the last second has no H line");
  return t;
}

// --- TrafficPublisher --------------------------------------------------------

TrafficPublisher::TrafficPublisher(Options options, const MetricsCollector& collector, Store& store)
    : options_(std::move(options)), collector_(collector), store_(store) {}

bool TrafficPublisher::Changed(const HostTraffic& now, const Written* before, LeaseId lease, int64_t wall_ms) const {
  if (before == nullptr || before->lease != lease) return true;
  const HostTraffic& old = before->value;
  if (now.since_ms != old.since_ms || now.active != old.active) return true;
  for (const auto& s : now.seconds) {
    auto it = std::find_if(old.seconds.begin(), old.seconds.end(),
                           [&](const HostTraffic::Second& o) { return o.start_ms == s.start_ms; });
    if (it == old.seconds.end() || !SameCounts(it->counts, s.counts)) return true;
  }
  // Seconds that only aged out of the range need no write: a reader of the
  // old record learns nothing wrong from it.
  return !now.active.empty() && wall_ms - old.at_ms >= options_.heartbeat.count();
}

Status TrafficPublisher::Publish(const std::map<std::string, std::vector<std::string>>& members,
                                 const std::vector<TcpSocket>& tcp) {
  const LeaseId lease = options_.lease ? options_.lease() : 0;
  if (lease == 0) return Status::Unavailable("traffic counters not published: this host has no lease yet");
  const MetricsCollector::Recent recent = collector_.RecentTraffic();
  if (!recent.started) return Status::Ok();
  TrackOffset(recent.wall_ms, recent.now_ms, &offset_ms_, &offset_known_);
  const int64_t now_s = FloorDiv(recent.now_ms, 1000);

  // What each endpoint's record should say now.
  std::map<std::string, HostTraffic> current;
  auto record = [&](const std::string& endpoint) -> HostTraffic& {
    auto [it, inserted] = current.try_emplace(endpoint);
    if (inserted) {
      HostTraffic& t = it->second;
      t.at_ms = recent.wall_ms;
      t.since_ms = recent.complete_since_s <= kFarPastSeconds ? 0 : recent.complete_since_s * 1000 + offset_ms_;
      t.from_ms = recent.first_s * 1000 + offset_ms_;
      t.to_ms = now_s * 1000 + offset_ms_;
    }
    return it->second;
  };
  for (const auto& [endpoint, buckets] : recent.endpoints) {
    if (!IsValidKeySegment(endpoint)) continue;
    HostTraffic& t = record(endpoint);
    for (const auto& b : buckets) t.seconds.push_back({b.second * 1000 + offset_ms_, b});
  }
  const EstablishedCounts established(tcp);
  std::set<std::string> endpoints;
  for (const auto& [endpoint, t] : current) endpoints.insert(endpoint);
  for (const auto& [endpoint, addrs] : members) {
    if (IsValidKeySegment(endpoint)) endpoints.insert(endpoint);
  }
  for (const std::string& endpoint : endpoints) {
    std::set<std::string> backends;
    auto m = members.find(endpoint);
    if (m != members.end()) backends.insert(m->second.begin(), m->second.end());
    auto c = current.find(endpoint);
    if (c != current.end()) {
      for (const auto& s : c->second.seconds) {
        for (const auto& [addr, counters] : s.counts.backends) backends.insert(addr);
      }
    }
    for (const std::string& addr : backends) {
      const int n = established.To(BackendSocketAddress(addr));
      if (n > 0) record(endpoint).active[addr] = n;
    }
  }

  // The writes: changed records, and deletes of records with nothing left.
  struct Write {
    std::string endpoint;
    Op op;
    bool put = false;
  };
  std::vector<Write> writes;
  for (const auto& [endpoint, t] : current) {
    auto w = written_.find(endpoint);
    if (!Changed(t, w == written_.end() ? nullptr : &w->second, lease, recent.wall_ms)) continue;
    writes.push_back({endpoint, Op::Put(CounterKey(endpoint, options_.manager), EncodeHostTraffic(t), lease), true});
  }
  for (const auto& [endpoint, w] : written_) {
    if (!current.count(endpoint))
      writes.push_back({endpoint, Op::Delete(CounterKey(endpoint, options_.manager)), false});
  }

  // One transaction per kMaxOpsPerTxn writes (or kMaxTxnBytes of values).
  size_t begin = 0;
  while (begin < writes.size()) {
    size_t end = begin;
    size_t bytes = 0;
    Txn txn;
    while (end < writes.size() && txn.success.size() < options_.max_ops_per_txn &&
           (txn.success.empty() || bytes + writes[end].op.value.size() <= options_.max_txn_bytes)) {
      bytes += writes[end].op.value.size();
      txn.success.push_back(writes[end].op);
      ++end;
    }
    auto committed = store_.Commit(txn);
    if (committed.ok()) {
      ++stats_.transactions;
      stats_.writes += txn.success.size();
      for (size_t i = begin; i < end; ++i) {
        if (writes[i].put) {
          written_[writes[i].endpoint] = Written{current[writes[i].endpoint], lease};
        } else {
          written_.erase(writes[i].endpoint);
        }
      }
    } else {
      // The store is away or the lease gone: the next round retries all of it.
      return committed.status().WithContext("publishing traffic counters");
    }
    begin = end;
  }
  return Status::Ok();
}

// --- ClusterTraffic ----------------------------------------------------------

ClusterTraffic::ClusterTraffic(Store& store, Clock& clock) : ClusterTraffic(store, clock, Options()) {}

ClusterTraffic::ClusterTraffic(Store& store, Clock& clock, Options options)
    : store_(store), clock_(clock), options_(options) {}

int64_t ClusterTraffic::ToLocalSecond(int64_t wall_ms) const {
  // The nearest second: a bucket of this host lands exactly on its own second.
  return FloorDiv(wall_ms - offset_ms_ + 500, 1000);
}

Status ClusterTraffic::ReadLocked(const std::string& endpoint, EndpointHistory& h, int64_t now_ms, int64_t now_s) {
  const std::string prefix = CounterPrefix(endpoint);
  auto records = store_.GetPrefix(prefix);
  if (!records.ok()) return records.status().WithContext("reading the traffic counters of " + endpoint);
  // Each record holds its host's last kPublishedSeconds: a read more than
  // that after the previous one may have missed seconds in between, and a
  // first read knows nothing older (as a collector that starts tracking an
  // endpoint knows only its last kMinRetentionSeconds).
  if (!h.read || now_s - h.last_read_s > MetricsCollector::kMinRetentionSeconds) {
    h.complete_since_s = std::max(h.complete_since_s, now_s - MetricsCollector::kMinRetentionSeconds);
  }
  std::set<std::string> seen;
  for (const KeyValue& kv : *records) {
    const std::string manager = kv.key.substr(prefix.size());
    if (!IsValidKeySegment(manager)) continue;
    seen.insert(manager);
    HostHistory& host = h.hosts[manager];
    if (kv.mod_revision == host.mod_revision) continue;  // read already
    host.mod_revision = kv.mod_revision;
    auto t = DecodeHostTraffic(kv.value);
    if (!t.ok()) {
      ++undecodable_;
      host.present = false;
      host.active.clear();
      spdlog::warn("{} (revision {}): {}; skipped", kv.key, kv.mod_revision, t.status().message());
      continue;
    }
    // The record is the truth for the seconds it covers.
    const int64_t from_s = ToLocalSecond(t->from_ms);
    const int64_t to_s = ToLocalSecond(t->to_ms);
    host.seconds.erase(host.seconds.lower_bound(from_s), host.seconds.upper_bound(to_s));
    for (auto& s : t->seconds) {
      const int64_t second = ToLocalSecond(s.start_ms);
      s.counts.second = second;
      host.seconds[second] = std::move(s.counts);
    }
    host.present = true;
    host.at_ms = t->at_ms;
    host.since_s = t->since_ms <= 0 ? kFarPastSeconds : ToLocalSecond(t->since_ms);
    host.active = std::move(t->active);
  }
  for (auto it = h.hosts.begin(); it != h.hosts.end();) {
    HostHistory& host = it->second;
    if (!seen.count(it->first)) {
      host.present = false;
      host.mod_revision = 0;
      host.active.clear();
    }
    host.seconds.erase(host.seconds.begin(), host.seconds.lower_bound(now_s - h.retention_s));
    if (!seen.count(it->first) && host.seconds.empty()) {
      it = h.hosts.erase(it);
    } else {
      ++it;
    }
  }
  h.read = true;
  h.last_read = TimePoint(Duration(now_ms));
  h.last_read_s = now_s;
  return Status::Ok();
}

Result<EndpointMetrics> ClusterTraffic::Metrics(const std::string& endpoint, Duration window,
                                                const std::vector<std::string>& backends_in_service) {
  if (!IsValidKeySegment(endpoint)) return Status::InvalidArgument("bad endpoint name '" + endpoint + "'");
  const int64_t window_ms = std::clamp<int64_t>(window.count(), 1000, kMaxWindowSeconds * 1000);
  const int64_t window_s = WindowSeconds(window);
  EndpointMetrics m;
  m.window_s = static_cast<double>(window_ms) / 1000.0;
  TrafficWindow::Sums sums;
  std::map<std::string, int> active;
  WindowSpan span;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const TimePoint now = clock_.Now();
    const int64_t now_ms = Millis(now);
    const int64_t now_s = FloorDiv(now_ms, 1000);
    const int64_t wall_ms = clock_.WallMillis();
    TrackOffset(wall_ms, now_ms, &offset_ms_, &offset_known_);
    for (auto it = endpoints_.begin(); it != endpoints_.end();) {
      if (it->first != endpoint && now - it->second.last_query > MetricsCollector::kForgetAfter) {
        it = endpoints_.erase(it);
      } else {
        ++it;
      }
    }
    EndpointHistory& h = endpoints_[endpoint];
    h.last_query = now;
    h.retention_s = std::max(h.retention_s, std::min(kMaxWindowSeconds, window_s + 2));
    if (!h.read || now - h.last_read >= options_.reread_after) {
      REACTOR_RETURN_IF_ERROR(ReadLocked(endpoint, h, now_ms, now_s));
    }
    int64_t complete_since_s = std::max(h.complete_since_s, now_s - h.retention_s);
    const int64_t fresh_after_ms = wall_ms - window_ms - kStaleSlack.count();
    for (const auto& [manager, host] : h.hosts) {
      if (!host.present || host.at_ms < fresh_after_ms) continue;  // gone, or silent for longer than the window
      complete_since_s = std::max(complete_since_s, host.since_s);
      for (const auto& [addr, n] : host.active) active[addr] += n;
    }
    span = WindowSpanAt(now_ms, window_ms, complete_since_s);
    for (const auto& [manager, host] : h.hosts) {
      for (auto it = host.seconds.lower_bound(span.first_s); it != host.seconds.end() && it->first <= now_s; ++it) {
        sums.Add(it->second);
      }
    }
  }
  AverageTraffic(
      sums, span.span_s, backends_in_service,
      [&active](const std::string& addr) {
        auto it = active.find(addr);
        return it == active.end() ? 0 : it->second;
      },
      &m);
  return m;
}

uint64_t ClusterTraffic::Undecodable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return undecodable_;
}

}  // namespace reactor
