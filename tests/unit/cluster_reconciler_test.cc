// Several hosts on one store (SPEC §13): each host runs its own loop
// (Reconciler: actuator, owner, nginx sync) with its own fake cloud, health
// and nginx; the store is a real in-memory SQLite store shared by them all.
// Host membership is written by the test (records without a lease), so a
// host "dies" when the test deletes its record.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "agent/cluster/cluster_view.h"
#include "agent/cluster/host_membership.h"
#include "agent/cluster/owner_election.h"
#include "agent/endpoint/endpoint_parser.h"
#include "agent/runtime/reconciler.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "reconciler_fakes.h"

namespace reactor {
namespace {

struct Host {
  std::string name;
  FakeCloud cloud;
  FakeNginx nginx;
  FakeHealth health;
  FixedPolicy policy;
  std::unique_ptr<Reconciler> loop;
};

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(SqliteStore::Open(":memory:", clock_)).value();
    events_ = std::make_unique<EventLog>(*store_, clock_);
    registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
  }

  void AddHosts(int n, int slots) {
    for (int i = 1; i <= n; ++i) {
      auto h = std::make_unique<Host>();
      h->name = "m" + std::to_string(i);
      h->cloud.host = "198.18.0." + std::to_string(10 + i);
      Register(h->name, slots);
      ReconcilerOptions o;
      o.manager = h->name;
      o.slots = slots;
      o.min_drain = Duration(1000);
      h->loop = std::make_unique<Reconciler>(o, *store_, *events_, h->nginx, h->health,
                                             std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &h->cloud}}, h->policy,
                                             clock_, [](const std::string&) { return 0; });
      hosts_.push_back(std::move(h));
    }
  }

  void Register(const std::string& name, int slots) {
    HostRecord r;
    r.name = name;
    r.address = "198.18.0.1";
    r.slots = slots;
    r.drivers = {"process"};
    ASSERT_TRUE(store_->Put(ManagerKey(name), EncodeHostRecord(r)).ok());
  }

  void Manage(const std::string& name, int target, const std::string& extra = "") {
    std::string ini = "[endpoint]\nurl = http://127.0.0.1:18080/" + name +
                      "/\ncloud = process\n[scaling]\nmin_instances = 0\nmax_instances = 20\nramp_limit = 10\n" +
                      extra + "[cloud:process]\ncommand = /bin/true\n";
    auto r = registry_->Put(name, ini, "api");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (auto& h : hosts_) h->policy.target = target;
  }

  // Every live host runs a round, then the fake world catches up.
  void Round() {
    for (auto& h : hosts_) {
      if (!h->loop) continue;
      ASSERT_TRUE(h->loop->RunOnce().ok()) << h->name;
    }
    clock_.Advance(Duration(500));
  }

  std::map<std::string, int> PerHost(const std::string& endpoint, InstanceState state) {
    std::map<std::string, int> out;
    auto list = InstanceTable(*store_).List(endpoint).value();
    for (const auto& r : list) {
      if (r.state == state) out[r.manager]++;
    }
    return out;
  }

  int SlotRecord(const std::string& host) {
    auto kv = store_->Get(SlotKey(host)).value();
    return kv ? DecodeSlotRecord(kv->value).value() : 0;
  }

  Host& Named(const std::string& name) {
    for (auto& h : hosts_) {
      if (h->name == name) return *h;
    }
    throw std::runtime_error("no host " + name);
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<EndpointRegistry> registry_;
  std::vector<std::unique_ptr<Host>> hosts_;
};

TEST_F(ClusterTest, OneOwnerDecidesAndSixInstancesSpreadTwoPerHost) {
  AddHosts(3, 10);
  Manage("web", 6);
  for (int i = 0; i < 4; ++i) Round();
  EXPECT_EQ(PerHost("web", InstanceState::kActive), (std::map<std::string, int>{{"m1", 2}, {"m2", 2}, {"m3", 2}}));
  int launches = 0;
  for (auto& h : hosts_) {
    launches += h->cloud.launches;
    EXPECT_EQ(h->cloud.launches, 2) << h->name << " runs what is assigned to it";
    EXPECT_EQ(h->nginx.members["web"].size(), 6u) << h->name << "'s nginx serves every host's instances";
  }
  EXPECT_EQ(launches, 6) << "one owner decided; the others did not launch as well";
  auto owner = store_->Get(OwnerKey("web")).value();
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->value, PreferredOwner("web", {"m1", "m2", "m3"}));
  for (auto& h : hosts_) {
    EXPECT_EQ(SlotRecord(h->name), 2) << h->name;
    EXPECT_EQ(h->loop->GetStatus("web")->target, 6) << h->name << " shows the owner's target";
    EXPECT_EQ(h->loop->GetStatus("web")->owner, owner->value);
  }
}

TEST_F(ClusterTest, PackFillsHostsInOrder) {
  AddHosts(3, 4);
  Manage("web", 6, "placement = pack\n");
  for (int i = 0; i < 4; ++i) Round();
  auto per_host = PerHost("web", InstanceState::kActive);
  std::vector<int> counts;
  for (auto& [host, n] : per_host) counts.push_back(n);
  std::sort(counts.rbegin(), counts.rend());
  EXPECT_EQ(counts, (std::vector<int>{4, 2})) << "one host full, one with the rest, one empty";
}

TEST_F(ClusterTest, AGoneHostsInstancesAreReplacedOnTheOthersAndItsSlotsGiven) {
  AddHosts(3, 10);
  Manage("web", 6);
  for (int i = 0; i < 4; ++i) Round();
  ASSERT_EQ(PerHost("web", InstanceState::kActive).size(), 3u);
  // A host that does not own the endpoint dies: its record goes, its loop stops.
  std::string owner = store_->Get(OwnerKey("web")).value()->value;
  std::string victim = owner == "m3" ? "m2" : "m3";
  Named(victim).loop.reset();
  ASSERT_TRUE(store_->Delete(ManagerKey(victim)).ok());
  Round();
  for (auto& h : hosts_) {
    if (!h->loop) continue;
    for (const auto& m : h->nginx.members["web"]) {
      EXPECT_EQ(m.address.rfind(Named(victim).cloud.host, 0), std::string::npos)
          << h->name << " still sends traffic to the gone host";
    }
  }
  for (int i = 0; i < 3; ++i) Round();
  auto active = PerHost("web", InstanceState::kActive);
  EXPECT_EQ(active.count(victim), 0u);
  int total = 0;
  for (auto& [host, n] : active) total += n;
  EXPECT_EQ(total, 6);
  EXPECT_EQ(SlotRecord(victim), 0) << "the gone host's slots are given back";

  // It comes back: whatever still runs there is no longer assigned there.
  Register(victim, 10);
  Host& back = Named(victim);
  ASSERT_EQ(back.cloud.running.size(), 2u);
  ReconcilerOptions o;
  o.manager = victim;
  o.slots = 10;
  back.loop = std::make_unique<Reconciler>(o, *store_, *events_, back.nginx, back.health,
                                           std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &back.cloud}}, back.policy,
                                           clock_, [](const std::string&) { return 0; });
  Round();
  // The stop worker stops them: wait for it (bounded), reading under the
  // fake cloud's lock.
  auto stopped = [&] {
    std::lock_guard<std::mutex> lock(back.cloud.mu);
    return back.cloud.running.empty();
  };
  for (int i = 0; i < 200 && !stopped(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(stopped()) << "a returning host stops what is no longer assigned to it";
}

TEST_F(ClusterTest, ConcurrentOwnersNeverPutAHostOverItsSlots) {
  AddHosts(3, 5);
  for (int e = 0; e < 20; ++e) Manage("e" + std::to_string(e), 2);
  for (int round = 0; round < 12; ++round) {
    std::vector<std::thread> threads;
    for (auto& h : hosts_) {
      threads.emplace_back([&h] { ASSERT_TRUE(h->loop->RunOnce().ok()); });
    }
    for (auto& t : threads) t.join();
    std::map<std::string, int> used;
    auto all = InstanceTable(*store_).ListAll().value();
    for (const auto& r : all) used[r.manager] += r.slots;
    for (auto& h : hosts_) {
      EXPECT_LE(used[h->name], 5) << h->name << " oversubscribed in round " << round;
      EXPECT_EQ(SlotRecord(h->name), used[h->name]) << h->name << "'s slot record drifted in round " << round;
    }
    clock_.Advance(Duration(500));
  }
  int total = 0;
  auto all = InstanceTable(*store_).ListAll().value();
  for (const auto& r : all) total += r.slots;
  EXPECT_EQ(total, 15) << "every slot of the cluster is used";
}

TEST_F(ClusterTest, AFencedOutOwnerStopsActingAtOnce) {
  AddHosts(1, 10);
  Manage("web", 2);
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(PerHost("web", InstanceState::kActive)["m1"], 2);
  // Another host takes the endpoint (as after m1's lease expired): the owner
  // key is re-created, with a new create revision.
  ASSERT_TRUE(store_->Delete(OwnerKey("web")).ok());
  ASSERT_TRUE(store_->Put(OwnerKey("web"), "m9").ok());
  hosts_[0]->policy.target = 5;
  Round();
  Round();
  EXPECT_EQ(PerHost("web", InstanceState::kActive)["m1"], 2) << "a fenced-out owner scaled";
  EXPECT_EQ(hosts_[0]->cloud.launches, 2);
  auto events = events_->Read("web", 0).value();
  bool said = false;
  for (const auto& e : events)
    said = said || e.message.find("no longer owns the endpoint: m9 does") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(OwnerElectionTest, AFencedWriteFailsOnceTheKeyWasRecreated) {
  FakeClock clock;
  auto store = std::move(SqliteStore::Open(":memory:", clock)).value();
  EventLog events(*store, clock);
  OwnerElection::Options o;
  o.self = "m1";
  OwnerElection election(o, *store, events, clock);
  ClusterView view = ReadClusterView(*store, "m1", 10, {"process"}, {}).value();
  election.Refresh({"web"}, view);
  auto fence = election.FenceFor("web");
  ASSERT_TRUE(fence.has_value());
  ASSERT_TRUE(store->Delete(OwnerKey("web")).ok());
  ASSERT_TRUE(store->Put(OwnerKey("web"), "m1").ok());  // same name, new create revision
  InstanceRecord r;
  r.id = "web-1";
  r.endpoint = "web";
  r.manager = "m1";
  r.slots = 1;
  Status st = ReserveInstance(*store, view, *fence, r);
  EXPECT_TRUE(st.IsFencedOut()) << st.ToString();
  EXPECT_FALSE(store->Get(InstanceKey("web", "web-1")).value().has_value()) << "nothing half-written";
}

TEST(PlacementTest, SpreadPrefersHostsWithoutAReplicaThenTheLeastUtilised) {
  ClusterView v;
  for (auto [name, used] : std::vector<std::pair<std::string, int>>{{"a", 5}, {"b", 1}, {"c", 2}}) {
    HostView h;
    h.name = name;
    h.slots = 10;
    h.used = used;
    h.drivers = {"process"};
    v.hosts[name] = h;
  }
  size_t cursor = 0;
  std::string why;
  EXPECT_EQ(ChooseHost(v, PlacementKind::kSpread, "process", 1, {}, &cursor, &why), "b");
  EXPECT_EQ(ChooseHost(v, PlacementKind::kSpread, "process", 1, {{"b", 1}}, &cursor, &why), "c");
  EXPECT_EQ(ChooseHost(v, PlacementKind::kPack, "process", 1, {}, &cursor, &why), "a");
  EXPECT_EQ(ChooseHost(v, PlacementKind::kPack, "process", 6, {}, &cursor, &why), "c") << "the fullest that fits";
  EXPECT_EQ(ChooseHost(v, PlacementKind::kRoundRobin, "process", 1, {}, &cursor, &why), "a");
  EXPECT_EQ(ChooseHost(v, PlacementKind::kRoundRobin, "process", 1, {}, &cursor, &why), "b");
  v.hosts["b"].cordoned = true;
  v.hosts["c"].drivers = {"docker"};
  EXPECT_FALSE(ChooseHost(v, PlacementKind::kSpread, "process", 6, {}, &cursor, &why).has_value());
  EXPECT_EQ(why,
            "no host takes a new instance: a has 5 of 10 used; b is cordoned; c has no process driver, "
            "an instance needs 6");
}

TEST(PlacementTest, PreferredOwnerIsStableAndMovesOnlyTheLeavingHostsShare) {
  std::vector<std::string> three = {"m1", "m2", "m3"}, two = {"m1", "m2"};
  int moved = 0, on_m3 = 0;
  for (int e = 0; e < 300; ++e) {
    std::string ep = "e" + std::to_string(e);
    std::string before = PreferredOwner(ep, three);
    EXPECT_EQ(before, PreferredOwner(ep, {"m3", "m1", "m2"})) << "order of hosts matters";
    on_m3 += before == "m3";
    moved += before != PreferredOwner(ep, two);
  }
  EXPECT_EQ(moved, on_m3) << "only m3's endpoints move when m3 leaves";
  EXPECT_GT(on_m3, 60);
  EXPECT_LT(on_m3, 140);
}

}  // namespace
}  // namespace reactor

namespace reactor {
namespace {

TEST(PlacementKey, IsParsedAndAnUnknownOneNamesTheKey) {
  const std::string base =
      "[endpoint]\nurl = http://127.0.0.1:18080/\ncloud = process\n[cloud:process]\ncommand = /bin/true\n";
  auto spread = ParseEndpointIni("web", base);
  ASSERT_TRUE(spread.ok());
  EXPECT_EQ(spread->scaling.placement, PlacementKind::kSpread) << "the default";
  auto rr = ParseEndpointIni("web", base + "[scaling]\nplacement = round_robin\n");
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  EXPECT_EQ(rr->scaling.placement, PlacementKind::kRoundRobin);
  auto bad = ParseEndpointIni("web", base + "[scaling]\nplacement = wide\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[scaling] placement: 'wide' is not spread, pack or round_robin"),
            std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace reactor
