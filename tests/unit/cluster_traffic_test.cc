// Traffic across hosts: the counter record's format, the publisher's writes
// (only what changed, under the lease, split at 128 operations), and the
// reader's sums over hosts, checked against MetricsCollector on the same
// lines: one host must give exactly today's numbers, two hosts exactly what
// one collector reading both logs would give.
#include "agent/metrics/cluster_traffic.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "fake_log_file_system.h"
#include "faulty_store.h"

namespace reactor {
namespace {

const std::string kLog = "/var/log/nginx/access.log";

// A FaultyStore that also remembers the size of every Commit it forwards.
class RecordingStore : public FaultyStore {
 public:
  explicit RecordingStore(Store& base) : FaultyStore(base) {}
  Result<TxnResult> Commit(const Txn& txn) override {
    commits.push_back(txn.success.size());
    size_t bytes = 0;
    for (const Op& op : txn.success) bytes += op.value.size();
    commit_bytes.push_back(bytes);
    return FaultyStore::Commit(txn);
  }
  std::vector<size_t> commits;       // operations of each Commit
  std::vector<size_t> commit_bytes;  // bytes of values of each Commit
};

// One host: its nginx's access log, its collector and its publisher.
class Host {
 public:
  Host(std::string name, Clock& clock, Store& store, LeaseId lease) : name_(std::move(name)), clock_(clock) {
    fs_ = new FakeLogFileSystem();
    fs_->Create(kLog);
    collector_ = std::make_unique<MetricsCollector>(kLog, clock, std::unique_ptr<FileSystem>(fs_));
    collector_->Poll();  // starts at the end of the (empty) log
    lease_ = lease;
    TrafficPublisher::Options o;
    o.manager = name_;
    o.lease = [this] { return lease_; };
    publisher_ = std::make_unique<TrafficPublisher>(o, *collector_, store);
  }
  // A line nginx logged `ago_ms` before now.
  void Log(int64_t ago_ms, const std::string& endpoint, const std::string& addrs, int status,
           const std::string& upstream_status, const std::string& times, uint64_t bytes = 1000) {
    fs_->Append(kLog, Line(clock_, ago_ms, endpoint, addrs, status, upstream_status, times, bytes));
  }
  static std::string Line(const Clock& clock, int64_t ago_ms, const std::string& endpoint, const std::string& addrs,
                          int status, const std::string& upstream_status, const std::string& times, uint64_t bytes) {
    char msec[32];
    int64_t ms = clock.WallMillis() - ago_ms;
    std::snprintf(msec, sizeof msec, "%lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    return std::string(msec) + "|reactor_" + endpoint + "|" + std::to_string(status) + "|" + std::to_string(bytes) +
           "|0.010|" + addrs + "|" + upstream_status + "|" + times + "\n";
  }
  void AppendRaw(const std::string& text) { fs_->Append(kLog, text); }
  Status Round(const std::map<std::string, std::vector<std::string>>& members = {},
               const std::vector<TcpSocket>& tcp = {}) {
    collector_->Poll();
    return publisher_->Publish(members, tcp);
  }
  MetricsCollector& collector() { return *collector_; }
  TrafficPublisher& publisher() { return *publisher_; }
  void set_lease(LeaseId l) { lease_ = l; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Clock& clock_;
  FakeLogFileSystem* fs_;  // owned by collector_
  std::unique_ptr<MetricsCollector> collector_;
  LeaseId lease_ = 0;
  std::unique_ptr<TrafficPublisher> publisher_;
};

TcpSocket Established(const std::string& ip, int port) {
  TcpSocket s;
  s.local_ip = "127.0.0.1";
  s.local_port = 40000;
  s.remote_ip = ip;
  s.remote_port = port;
  s.state = kTcpEstablished;
  return s;
}

// Every field the policy or the API can see, compared exactly (not nearly:
// the same sums in the same order give the same doubles).
void ExpectSameMetrics(const EndpointMetrics& want, const EndpointMetrics& got, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(want.averages, got.averages);
  EXPECT_EQ(want.total_rate, got.total_rate);
  EXPECT_EQ(want.instances, got.instances);
  EXPECT_EQ(want.window_s, got.window_s);
  ASSERT_EQ(want.backends.size(), got.backends.size());
  for (const auto& [addr, b] : want.backends) {
    ASSERT_EQ(got.backends.count(addr), 1u) << addr;
    const BackendMetrics& g = got.backends.at(addr);
    EXPECT_EQ(b.hits, g.hits) << addr;
    EXPECT_EQ(b.bytes, g.bytes) << addr;
    EXPECT_EQ(b.errors, g.errors) << addr;
    EXPECT_EQ(b.response_sum, g.response_sum) << addr;
    EXPECT_EQ(b.rate, g.rate) << addr;
    EXPECT_EQ(b.response, g.response) << addr;
    EXPECT_EQ(b.active, g.active) << addr;
    EXPECT_EQ(b.in_service, g.in_service) << addr;
  }
}

class ClusterTrafficTest : public ::testing::Test {
 protected:
  ClusterTrafficTest() { store_ = std::move(SqliteStore::Open(":memory:", clock_)).value(); }
  LeaseId Lease() { return store_->GrantLease(Duration(3600 * 1000)).value(); }
  std::unique_ptr<Host> NewHost(const std::string& name) {
    return std::make_unique<Host>(name, clock_, *store_, Lease());
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

// --- the record --------------------------------------------------------------

TEST(HostTrafficFormat, RoundTripsEveryFieldExactly) {
  HostTraffic t;
  t.at_ms = 1700000012345;
  t.since_ms = 1700000000000;
  t.from_ms = 1700000002000;
  t.to_ms = 1700000012000;
  HostTraffic::Second s;
  s.start_ms = 1700000011000;
  s.counts.requests = 7;
  s.counts.bytes = 12345;
  s.counts.errors = 2;
  s.counts.bins = {{0, 3}, {57, 1}, {ResponseBins::kCount - 1, 2}};
  BackendCounters c;
  c.hits = 4;
  c.bytes = 999;
  c.errors = 1;
  c.timed = 3;
  c.response_sum = 0.1 + 0.2 + 0.003;  // not a short decimal: must survive as the same double
  s.counts.backends = {{"10.0.0.2:80", c}, {"[::1]:81", BackendCounters()}};
  t.seconds.push_back(s);
  t.active = {{"10.0.0.2:80", 3}};

  const std::string v = EncodeHostTraffic(t);
  auto back = DecodeHostTraffic(v);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << v;
  EXPECT_EQ(back->at_ms, t.at_ms);
  EXPECT_EQ(back->since_ms, t.since_ms);
  EXPECT_EQ(back->from_ms, t.from_ms);
  EXPECT_EQ(back->to_ms, t.to_ms);
  ASSERT_EQ(back->seconds.size(), 1u);
  EXPECT_EQ(back->seconds[0].start_ms, s.start_ms);
  EXPECT_EQ(back->seconds[0].counts.requests, 7u);
  EXPECT_EQ(back->seconds[0].counts.bytes, 12345u);
  EXPECT_EQ(back->seconds[0].counts.errors, 2u);
  EXPECT_EQ(back->seconds[0].counts.bins, s.counts.bins);
  EXPECT_EQ(back->seconds[0].counts.backends, s.counts.backends);  // order kept, response_sum bit for bit
  EXPECT_EQ(back->active, t.active);
  EXPECT_EQ(EncodeHostTraffic(*back), v);
}

TEST(HostTrafficFormat, RefusesRecordsItCannotTrust) {
  const std::string good = "T1 5 0 1 4\nA a:1 2\nS 2 1 10 0\nH 3 1\nB a:1 1 10 0 1 0.5\n";
  ASSERT_TRUE(DecodeHostTraffic(good).ok()) << DecodeHostTraffic(good).status().ToString();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"empty", ""},
      {"JSON", "{\"v\":1}\n"},
      {"another version", "T2 5 0 1 4\n"},
      {"no newline at the end", "T1 5 0 1 4"},
      {"a missing field", "T1 5 0 1\n"},
      {"from after to", "T1 5 0 5 4\n"},
      {"negative count", "T1 5 0 1 4\nS 2 -1 10 0\nH\n"},
      {"no histogram line", "T1 5 0 1 4\nS 2 1 10 0\nB a:1 1 10 0 1 0.5\n"},
      {"bin out of range", "T1 5 0 1 4\nS 2 1 10 0\nH 9999 1\n"},
      {"odd histogram", "T1 5 0 1 4\nS 2 1 10 0\nH 3\n"},
      {"short backend line", "T1 5 0 1 4\nS 2 1 10 0\nH\nB a:1 1 10\n"},
      {"response sum not a number", "T1 5 0 1 4\nS 2 1 10 0\nH\nB a:1 1 10 0 1 x\n"},
      {"backend before any second", "T1 5 0 1 4\nB a:1 1 10 0 1 0.5\n"},
      {"seconds out of order", "T1 5 0 1 4\nS 3 1 1 0\nH\nS 2 1 1 0\nH\n"},
      {"active not a count", "T1 5 0 1 4\nA a:1 x\n"},
      {"unknown line", "T1 5 0 1 4\nZ 1\n"},
  };
  for (const auto& [what, value] : bad) {
    auto r = DecodeHostTraffic(value);
    EXPECT_FALSE(r.ok()) << what;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("traffic counter record"), std::string::npos) << what;
    }
  }
}

// --- one host: today's numbers -------------------------------------------------

// The same lines go to two collectors: one queried directly, as the agent did
// before the cluster (the old numbers), and one that only publishes, read
// back through the store by ClusterTraffic (the new path). Rounds land at
// every phase of a second; traffic has retries, 5xx, lines without a
// backend or a time, late lines, an endpoint that starts late and windows
// longer than a record holds (60 s: from the reader's own history).
class OneHostTrafficTest : public ClusterTrafficTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(OneHostTrafficTest, GivesExactlyTheCollectorsNumbers) {
  auto old_fs = new FakeLogFileSystem();
  old_fs->Create(kLog);
  MetricsCollector old_collector(kLog, clock_, std::unique_ptr<FileSystem>(old_fs));
  old_collector.Poll();
  auto host = NewHost("h1");
  ClusterTraffic cluster(*store_, clock_);

  const std::vector<std::string> web_in_service = {"10.0.0.1:80", "10.0.0.2:80", "[::1]:81"};
  const std::vector<std::string> api_in_service = {"10.0.1.1:80"};
  const std::vector<TcpSocket> tcp = {Established("10.0.0.1", 80), Established("10.0.0.1", 80), Established("::1", 81),
                                      Established("10.0.1.1", 80)};
  const std::map<std::string, std::vector<std::string>> members = {{"web", web_in_service}, {"api", api_in_service}};
  const std::vector<Duration> windows = {Duration(1000), Duration(5000), Duration(2500), Duration(30000),
                                         Duration(60000)};
  std::mt19937 rng(GetParam());
  auto log = [&](int64_t ago_ms, const std::string& ep, const std::string& addrs, int status,
                 const std::string& ustatus, const std::string& times) {
    const std::string line = Host::Line(clock_, ago_ms, ep, addrs, status, ustatus, times, 100 + rng() % 5000);
    old_fs->Append(kLog, line);
    host->AppendRaw(line);
  };
  int compared = 0;
  for (int round = 0; round < 150; ++round) {
    clock_.Advance(Duration(150 + rng() % 1200));
    // Bursty traffic on web; api only from round 40 on, queried from round 60.
    const int n = round % 37 < 20 ? static_cast<int>(rng() % 40) : 0;
    for (int i = 0; i < n; ++i) {
      const int64_t ago = rng() % 3000;  // some lines a few seconds late
      char t[32];
      std::snprintf(t, sizeof t, "%.3f", (rng() % 2000) / 1000.0);
      switch (rng() % 6) {
        case 0: log(ago, "web", "10.0.0.1:80", 200, "200", t); break;
        case 1: log(ago, "web", "10.0.0.2:80", 502, "502", t); break;
        case 2: log(ago, "web", "10.0.0.1:80, 10.0.0.2:80", 200, "502, 200", std::string("0.001, ") + t); break;
        case 3: log(ago, "web", "-", 503, "-", "-"); break;
        case 4: log(ago, "web", "[::1]:81", 200, "-", "-"); break;
        default: log(ago, "web", "10.0.0.9:80", 500, "500", t); break;  // a backend no longer in service
      }
    }
    if (round >= 40) log(rng() % 900, "api", "10.0.1.1:80", 200, "200", "0.020");

    old_collector.Poll();
    ASSERT_TRUE(host->Round(members, tcp).ok());
    for (Duration w : windows) {
      const EndpointMetrics want = old_collector.Metrics("web", w, web_in_service, &tcp);
      auto got = cluster.Metrics("web", w, web_in_service);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ExpectSameMetrics(want, *got, "web round " + std::to_string(round) + " window " + std::to_string(w.count()));
      ++compared;
      if (round >= 60) {
        const EndpointMetrics want_api = old_collector.Metrics("api", w, api_in_service, &tcp);
        auto got_api = cluster.Metrics("api", w, api_in_service);
        ASSERT_TRUE(got_api.ok());
        ExpectSameMetrics(want_api, *got_api, "api round " + std::to_string(round));
      }
    }
    if (HasFatalFailure() || HasFailure()) return;
  }
  EXPECT_EQ(compared, 150 * static_cast<int>(windows.size()));
  // The comparison saw real traffic, not zeros against zeros.
  EXPECT_GT(host->publisher().stats().writes, 50u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, OneHostTrafficTest, ::testing::Values(12u, 7u, 2026u));

// --- several hosts ---------------------------------------------------------------

// Two front ends share one endpoint's traffic: the sums per backend over
// both equal one collector that read both logs, and the per-instance rate is
// the endpoint's total ÷ instances, not one front end's share (nor the
// average of the front ends, as Gridcentric Reactor had it).
TEST_F(ClusterTrafficTest, SumsEveryHostsCountersPerBackend) {
  auto a = NewHost("a");
  auto b = NewHost("b");
  auto both_fs = new FakeLogFileSystem();
  both_fs->Create(kLog);
  MetricsCollector both(kLog, clock_, std::unique_ptr<FileSystem>(both_fs));
  both.Poll();
  ClusterTraffic cluster(*store_, clock_);
  const std::vector<std::string> in_service = {"10.0.0.1:80", "10.0.0.2:80"};

  clock_.Advance(Duration(10000));  // now = a whole second
  auto line = [&](int64_t ago, const std::string& addr, int status, const char* t) {
    return Host::Line(clock_, ago, "web", addr, status, std::to_string(status), t, 1000);
  };
  for (int i = 0; i < 30; ++i) {  // host a: 30 requests in the last 5 s, all to backend 1
    std::string l = line(50 + 160 * i, "10.0.0.1:80", 200, "0.010");
    a->AppendRaw(l);
    both_fs->Append(kLog, l);
  }
  for (int i = 0; i < 20; ++i) {  // host b: 20 to backend 1 (4 of them 5xx) and 10 to backend 2
    std::string l = line(50 + 240 * i, i % 2 ? "10.0.0.1:80" : "10.0.0.2:80", i % 5 == 0 ? 503 : 200, "0.030");
    b->AppendRaw(l);
    both_fs->Append(kLog, l);
  }
  const std::vector<TcpSocket> tcp_a = {Established("10.0.0.1", 80), Established("10.0.0.1", 80)};
  const std::vector<TcpSocket> tcp_b = {Established("10.0.0.1", 80), Established("10.0.0.2", 80),
                                        Established("10.0.0.2", 80)};
  ASSERT_TRUE(a->Round({{"web", in_service}}, tcp_a).ok());
  ASSERT_TRUE(b->Round({{"web", in_service}}, tcp_b).ok());
  both.Poll();

  auto got = cluster.Metrics("web", Duration(5000), in_service);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // 50 requests over the 5 s window: 10/s in all, 5/s per instance.
  EXPECT_DOUBLE_EQ(got->total_rate, 10.0);
  EXPECT_DOUBLE_EQ(got->averages["rate"], 5.0);
  EXPECT_DOUBLE_EQ(got->averages["errors"], 4.0 / 5 / 2);
  EXPECT_DOUBLE_EQ(got->averages["response"], (30 * 0.010 + 20 * 0.030) / 50);
  EXPECT_EQ(got->backends["10.0.0.1:80"].hits, 40u);
  EXPECT_EQ(got->backends["10.0.0.2:80"].hits, 10u);
  // Connections of both front ends: 3 to backend 1, 2 to backend 2.
  EXPECT_EQ(got->backends["10.0.0.1:80"].active, 3);
  EXPECT_EQ(got->backends["10.0.0.2:80"].active, 2);
  EXPECT_DOUBLE_EQ(got->averages["active"], 2.5);

  // And the percentiles and everything else as one collector of both logs.
  std::vector<TcpSocket> tcp_both = tcp_a;
  tcp_both.insert(tcp_both.end(), tcp_b.begin(), tcp_b.end());
  EndpointMetrics want = both.Metrics("web", Duration(5000), in_service, &tcp_both);
  EXPECT_DOUBLE_EQ(want.averages["rate"], got->averages["rate"]);
  for (const auto& [name, v] : want.averages) EXPECT_NEAR(v, got->averages[name], 1e-12) << name;
  EXPECT_EQ(want.averages["response.p50"], got->averages["response.p50"]);
  EXPECT_EQ(want.averages["response.p99"], got->averages["response.p99"]);
}

// A host that published and then fell silent (its record still there, its
// lease alive) stops counting once its record is older than the window: its
// connections no longer add to `active` and its buckets are out of the window.
// A host whose record is gone (lease expired) adds no connections at once.
TEST_F(ClusterTrafficTest, IgnoresHostsSilentForLongerThanTheWindowAndGoneHosts) {
  auto a = NewHost("a");
  auto b = NewHost("b");
  ClusterTraffic cluster(*store_, clock_);
  const std::vector<std::string> in_service = {"10.0.0.1:80"};
  const std::map<std::string, std::vector<std::string>> members = {{"web", in_service}};
  const std::vector<TcpSocket> one = {Established("10.0.0.1", 80)};
  const std::vector<TcpSocket> four(4, Established("10.0.0.1", 80));

  clock_.Advance(Duration(20000));
  for (int i = 0; i < 10; ++i) b->Log(100 * i, "web", "10.0.0.1:80", 200, "200", "0.010");
  ASSERT_TRUE(a->Round(members, one).ok());
  ASSERT_TRUE(b->Round(members, four).ok());
  auto m = cluster.Metrics("web", Duration(5000), in_service);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->backends["10.0.0.1:80"].active, 5);
  EXPECT_EQ(m->backends["10.0.0.1:80"].hits, 10u);

  // b stops publishing (its agent hung); a goes on, once a second.
  for (int s = 0; s < 8; ++s) {
    clock_.Advance(Duration(1000));
    ASSERT_TRUE(a->Round(members, one).ok());
  }
  m = cluster.Metrics("web", Duration(5000), in_service);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(store_->Get(CounterKey("web", "b")).value().has_value());  // still there, 8 s old
  EXPECT_EQ(m->backends["10.0.0.1:80"].active, 1);                       // b's 4 no longer count
  EXPECT_EQ(m->backends["10.0.0.1:80"].hits, 0u);
  EXPECT_DOUBLE_EQ(m->averages["rate"], 0.0);

  // b comes back and publishes again; then its record goes (as with its lease).
  clock_.Advance(Duration(200));
  ASSERT_TRUE(b->Round(members, four).ok());
  m = cluster.Metrics("web", Duration(5000), in_service);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->backends["10.0.0.1:80"].active, 5);
  ASSERT_TRUE(store_->Delete(CounterKey("web", "b")).ok());
  clock_.Advance(Duration(200));
  m = cluster.Metrics("web", Duration(5000), in_service);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->backends["10.0.0.1:80"].active, 1);
}

// A host whose collector started late (an agent restart: nginx served while
// it was down, and those lines were never read) shortens the window to the
// time since its start, so the others' rate is not diluted by a hole.
TEST_F(ClusterTrafficTest, AHostThatStartedLateShortensTheWindowToWhatIsKnown) {
  auto a = NewHost("a");
  ClusterTraffic cluster(*store_, clock_);
  clock_.Advance(Duration(30000));
  auto late = NewHost("late");  // its collector starts now
  clock_.Advance(Duration(2000));
  for (int i = 0; i < 20; ++i) {
    a->Log(100 * i, "web", "10.0.0.1:80", 200, "200", "0.010");
    late->Log(100 * i, "web", "10.0.0.1:80", 200, "200", "0.010");
  }
  ASSERT_TRUE(a->Round().ok());
  ASSERT_TRUE(late->Round().ok());
  auto m = cluster.Metrics("web", Duration(30000), {"10.0.0.1:80"});
  ASSERT_TRUE(m.ok());
  // The first read knows the last 10 s (as a collector that starts tracking
  // an endpoint); "late" started 2 s ago: 40 requests over 2 s.
  EXPECT_DOUBLE_EQ(m->total_rate, 20.0);
}

TEST_F(ClusterTrafficTest, SkipsARecordThatDoesNotDecodeAndCountsTheOthers) {
  auto a = NewHost("a");
  ClusterTraffic cluster(*store_, clock_);
  clock_.Advance(Duration(10000));
  for (int i = 0; i < 10; ++i) a->Log(100 * i, "web", "10.0.0.1:80", 200, "200", "0.010");
  ASSERT_TRUE(a->Round().ok());
  ASSERT_TRUE(store_->Put(CounterKey("web", "broken"), "T1 5 0 1\n").ok());
  auto m = cluster.Metrics("web", Duration(5000), {"10.0.0.1:80"});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->backends["10.0.0.1:80"].hits, 10u);
  EXPECT_EQ(cluster.Undecodable(), 1u);
  // Read again (the same revision): reported once, not every round.
  clock_.Advance(Duration(1000));
  ASSERT_TRUE(cluster.Metrics("web", Duration(5000), {"10.0.0.1:80"}).ok());
  EXPECT_EQ(cluster.Undecodable(), 1u);
}

TEST_F(ClusterTrafficTest, AnUnreachableStoreIsAnErrorNotZeroTraffic) {
  FaultyStore faulty(*store_);
  ClusterTraffic cluster(faulty, clock_);
  faulty.unavailable = true;
  auto m = cluster.Metrics("web", Duration(5000), {"10.0.0.1:80"});
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(m.status().code() == Status::Code::kUnavailable) << m.status().ToString();
}

// --- the publisher -------------------------------------------------------------

TEST_F(ClusterTrafficTest, PublisherWritesOnlyWhatChangedAndDeletesWhatAgedOut) {
  RecordingStore recording(*store_);
  const LeaseId lease = Lease();
  auto fs = new FakeLogFileSystem();
  fs->Create(kLog);
  MetricsCollector collector(kLog, clock_, std::unique_ptr<FileSystem>(fs));
  collector.Poll();
  TrafficPublisher::Options o;
  o.manager = "h1";
  o.lease = [lease] { return lease; };
  TrafficPublisher publisher(o, collector, recording);
  auto round = [&](const std::vector<TcpSocket>& tcp = {}) {
    collector.Poll();
    return publisher.Publish({{"web", {"10.0.0.1:80"}}}, tcp);
  };

  clock_.Advance(Duration(5000));
  ASSERT_TRUE(round().ok());
  EXPECT_TRUE(recording.commits.empty());  // no traffic, no connections: nothing to say
  fs->Append(kLog, Host::Line(clock_, 10, "web", "10.0.0.1:80", 200, "200", "0.010", 10));
  ASSERT_TRUE(round().ok());
  ASSERT_EQ(recording.commits.size(), 1u);
  auto kv = store_->Get(CounterKey("web", "h1")).value();
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->lease, lease);
  // Time passes without traffic: the old record stays true, nothing is written...
  for (int i = 0; i < 9; ++i) {
    clock_.Advance(Duration(1000));
    ASSERT_TRUE(round().ok());
  }
  EXPECT_EQ(recording.commits.size(), 1u);
  // ...until its last bucket has aged out of every record: then it goes.
  clock_.Advance(Duration(1500));
  ASSERT_TRUE(round().ok());
  EXPECT_EQ(recording.commits.size(), 2u);
  EXPECT_FALSE(store_->Get(CounterKey("web", "h1")).value().has_value());

  // Open connections without traffic: published, then refreshed once a
  // second (so readers can tell them from a hung host's), not every round.
  const std::vector<TcpSocket> tcp = {Established("10.0.0.1", 80)};
  ASSERT_TRUE(round(tcp).ok());
  EXPECT_EQ(recording.commits.size(), 3u);
  clock_.Advance(Duration(400));
  ASSERT_TRUE(round(tcp).ok());
  EXPECT_EQ(recording.commits.size(), 3u);
  clock_.Advance(Duration(600));
  ASSERT_TRUE(round(tcp).ok());
  EXPECT_EQ(recording.commits.size(), 4u);
  auto t = DecodeHostTraffic(store_->Get(CounterKey("web", "h1")).value()->value);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->active.at("10.0.0.1:80"), 1);
  EXPECT_TRUE(t->seconds.empty());
}

TEST_F(ClusterTrafficTest, PublisherSplitsTransactionsAt128Operations) {
  RecordingStore recording(*store_);
  const LeaseId lease = Lease();
  auto fs = new FakeLogFileSystem();
  fs->Create(kLog);
  MetricsCollector collector(kLog, clock_, std::unique_ptr<FileSystem>(fs));
  collector.Poll();
  TrafficPublisher::Options o;
  o.manager = "h1";
  o.lease = [lease] { return lease; };
  TrafficPublisher publisher(o, collector, recording);
  clock_.Advance(Duration(3000));
  for (int e = 0; e < 300; ++e) {
    fs->Append(kLog, Host::Line(clock_, 10, "ep" + std::to_string(e), "10.0.0.1:80", 200, "200", "0.010", 10));
  }
  collector.Poll();
  ASSERT_TRUE(publisher.Publish({}, {}).ok());
  EXPECT_EQ(recording.commits, (std::vector<size_t>{128, 128, 44}));
  EXPECT_EQ(store_->GetPrefix(kKeyRoot + "counters/").value().size(), 300u);
  EXPECT_EQ(publisher.stats().transactions, 3u);
  EXPECT_EQ(publisher.stats().writes, 300u);
}

TEST_F(ClusterTrafficTest, PublisherSplitsTransactionsByTheirSize) {
  RecordingStore recording(*store_);
  const LeaseId lease = Lease();
  auto fs = new FakeLogFileSystem();
  fs->Create(kLog);
  MetricsCollector collector(kLog, clock_, std::unique_ptr<FileSystem>(fs));
  collector.Poll();
  TrafficPublisher::Options o;
  o.manager = "h1";
  o.lease = [lease] { return lease; };
  o.max_txn_bytes = 300;  // about two records of one bucket each
  TrafficPublisher publisher(o, collector, recording);
  clock_.Advance(Duration(3000));
  for (int e = 0; e < 10; ++e) {
    fs->Append(kLog, Host::Line(clock_, 10, "ep" + std::to_string(e), "10.0.0.1:80", 200, "200", "0.010", 10));
  }
  collector.Poll();
  ASSERT_TRUE(publisher.Publish({}, {}).ok());
  ASSERT_GT(recording.commits.size(), 2u);
  size_t total = 0;
  for (size_t i = 0; i < recording.commits.size(); ++i) {
    EXPECT_LE(recording.commit_bytes[i], 300u);
    total += recording.commits[i];
  }
  EXPECT_EQ(total, 10u);
}

TEST_F(ClusterTrafficTest, PublisherRetriesAfterTheStoreWasAwayAndFollowsANewLease) {
  FaultyStore faulty(*store_);
  LeaseId lease = Lease();
  auto fs = new FakeLogFileSystem();
  fs->Create(kLog);
  MetricsCollector collector(kLog, clock_, std::unique_ptr<FileSystem>(fs));
  collector.Poll();
  TrafficPublisher::Options o;
  o.manager = "h1";
  o.lease = [&lease] { return lease; };
  TrafficPublisher publisher(o, collector, faulty);
  clock_.Advance(Duration(3000));
  fs->Append(kLog, Host::Line(clock_, 10, "web", "10.0.0.1:80", 200, "200", "0.010", 10));
  collector.Poll();

  faulty.unavailable = true;
  Status st = publisher.Publish({}, {});
  EXPECT_TRUE(st.code() == Status::Code::kUnavailable) << st.ToString();
  faulty.unavailable = false;
  ASSERT_TRUE(publisher.Publish({}, {}).ok());  // nothing changed in the log, but it was never written
  auto kv = store_->Get(CounterKey("web", "h1")).value();
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->lease, lease);

  // The host re-registered under a new lease (the old one expired, taking
  // the record with it): everything is written again under the new one.
  ASSERT_TRUE(store_->RevokeLease(lease).ok());
  lease = Lease();
  ASSERT_TRUE(publisher.Publish({}, {}).ok());
  kv = store_->Get(CounterKey("web", "h1")).value();
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->lease, lease);

  lease = 0;  // no lease: nothing is written, and it says why
  st = publisher.Publish({}, {});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no lease"), std::string::npos);
}

}  // namespace
}  // namespace reactor
