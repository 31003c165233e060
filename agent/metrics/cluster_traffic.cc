#include "agent/metrics/cluster_traffic.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/store/keys.h"

namespace reactor {

namespace {

using nlohmann::json;

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

bool IsUnsigned(const json& j) { return j.is_number_unsigned(); }
bool IsInteger(const json& j) { return j.is_number_integer(); }

Status Bad(const std::string& why) { return Status::InvalidArgument("traffic counter record: " + why); }

// An endpoint's collector is told nothing about far-away pasts: a start
// before this is "everything is known" (the log was read from its start).
constexpr int64_t kFarPastSeconds = -(int64_t{1} << 40);

}  // namespace

std::string EncodeHostTraffic(const HostTraffic& t) {
  json buckets = json::array();
  for (const auto& s : t.seconds) {
    json bins = json::array();
    for (const auto& [bin, count] : s.counts.bins) bins.push_back(json::array({bin, count}));
    json backends = json::array();
    for (const auto& [addr, c] : s.counts.backends) {
      backends.push_back(json::array({addr, c.hits, c.bytes, c.errors, c.timed, c.response_sum}));
    }
    buckets.push_back(json{{"t", s.start_ms},
                           {"n", s.counts.requests},
                           {"b", s.counts.bytes},
                           {"e", s.counts.errors},
                           {"h", std::move(bins)},
                           {"be", std::move(backends)}});
  }
  json active = json::object();
  for (const auto& [addr, n] : t.active) active[addr] = n;
  return json{{"v", 1},
              {"at", t.at_ms},
              {"since", t.since_ms},
              {"from", t.from_ms},
              {"to", t.to_ms},
              {"buckets", std::move(buckets)},
              {"active", std::move(active)}}
      .dump();
}

Result<HostTraffic> DecodeHostTraffic(const std::string& value) {
  const json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return Bad("not a JSON object");
  if (!j.contains("v") || j["v"] != 1) return Bad("unknown version (want \"v\": 1)");
  HostTraffic t;
  for (const auto& [name, field] : {std::pair<const char*, int64_t*>{"at", &t.at_ms}, {"since", &t.since_ms},
                                    {"from", &t.from_ms}, {"to", &t.to_ms}}) {
    if (!j.contains(name) || !IsInteger(j[name])) return Bad(std::string("\"") + name + "\" is not an integer");
    *field = j[name].get<int64_t>();
  }
  if (t.from_ms > t.to_ms) return Bad("\"from\" is after \"to\"");
  if (!j.contains("buckets") || !j["buckets"].is_array()) return Bad("\"buckets\" is not an array");
  for (const json& b : j["buckets"]) {
    if (!b.is_object()) return Bad("a bucket is not an object");
    HostTraffic::Second s;
    if (!b.contains("t") || !IsInteger(b["t"])) return Bad("a bucket's \"t\" is not an integer");
    s.start_ms = b["t"].get<int64_t>();
    for (const auto& [name, field] : {std::pair<const char*, uint64_t*>{"n", &s.counts.requests},
                                      {"b", &s.counts.bytes}, {"e", &s.counts.errors}}) {
      if (!b.contains(name) || !IsUnsigned(b[name])) return Bad(std::string("a bucket's \"") + name + "\" is not a count");
      *field = b[name].get<uint64_t>();
    }
    if (!b.contains("h") || !b["h"].is_array()) return Bad("a bucket's \"h\" is not an array");
    for (const json& h : b["h"]) {
      if (!h.is_array() || h.size() != 2 || !IsUnsigned(h[0]) || !IsUnsigned(h[1]) ||
          h[0].get<uint64_t>() >= static_cast<uint64_t>(ResponseBins::kCount) ||
          h[1].get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        return Bad("a histogram entry is not [bin, count]");
      }
      s.counts.bins.emplace_back(static_cast<uint16_t>(h[0].get<uint64_t>()), static_cast<uint32_t>(h[1].get<uint64_t>()));
    }
    if (!b.contains("be") || !b["be"].is_array()) return Bad("a bucket's \"be\" is not an array");
    for (const json& e : b["be"]) {
      if (!e.is_array() || e.size() != 6 || !e[0].is_string() || !IsUnsigned(e[1]) || !IsUnsigned(e[2]) ||
          !IsUnsigned(e[3]) || !IsUnsigned(e[4]) || !e[5].is_number()) {
        return Bad("a backend entry is not [address, hits, bytes, errors, timed, response_sum]");
      }
      BackendCounters c;
      c.hits = e[1].get<uint64_t>();
      c.bytes = e[2].get<uint64_t>();
      c.errors = e[3].get<uint64_t>();
      c.timed = e[4].get<uint64_t>();
      c.response_sum = e[5].get<double>();
      s.counts.backends.emplace_back(e[0].get<std::string>(), c);
    }
    if (!t.seconds.empty() && s.start_ms <= t.seconds.back().start_ms) return Bad("buckets are not in order");
    t.seconds.push_back(std::move(s));
  }
  if (!j.contains("active") || !j["active"].is_object()) return Bad("\"active\" is not an object");
  for (const auto& [addr, n] : j["active"].items()) {
    if (!IsUnsigned(n) || n.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      return Bad("\"active\" of " + addr + " is not a count");
    }
    t.active[addr] = n.get<int>();
  }
  return t;
}

// --- TrafficPublisher --------------------------------------------------------

TrafficPublisher::TrafficPublisher(Options options, const MetricsCollector& collector, Store& store, Clock& clock)
    : options_(std::move(options)), collector_(collector), store_(store), clock_(clock) {}

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
    if (!current.count(endpoint)) writes.push_back({endpoint, Op::Delete(CounterKey(endpoint, options_.manager)), false});
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
  AverageTraffic(sums, span.span_s, backends_in_service,
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
