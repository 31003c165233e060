// The reconcile loop with fakes for the cloud, nginx, health and policy, a
// real in-memory store, and a clock that moves only when the test says so.
#include "agent/runtime/reconciler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "agent/endpoint/endpoint_parser.h"
#include "agent/store/sqlite_store.h"
#include "agent/store/keys.h"
#include "fake_clock.h"
#include "faulty_store.h"
#include "reconciler_fakes.h"

namespace reactor {
namespace {

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(SqliteStore::Open(":memory:", clock_)).value();
    events_ = std::make_unique<EventLog>(*store_, clock_);
    registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
  }

  Reconciler& Make(int slots = 1000) {
    ReconcilerOptions o;
    o.manager = "m1";
    o.slots = slots;
    o.min_drain = Duration(1000);
    reconciler_ = std::make_unique<Reconciler>(o, *store_, *events_, nginx_, health_,
                                               std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &cloud_}}, policy_,
                                               clock_, [this](const std::string& a) { return open_conns_[a]; });
    return *reconciler_;
  }

  void Manage(const std::string& extra = "") {
    std::string ini =
        "[endpoint]\nurl = http://127.0.0.1:18080/\ncloud = process\n[scaling]\nmin_instances = 0\n"
        "max_instances = 20\nramp_limit = 2\ndrain_timeout = 10s\n" +
        extra + "[cloud:process]\ncommand = /bin/true\nslots = 3\n";
    auto r = registry_->Put("web", ini, "api");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // Runs a round and lets the fake world catch up (health reports read next round).
  void Round() {
    ASSERT_TRUE(reconciler_->RunOnce().ok());
    clock_.Advance(Duration(500));
  }

  std::vector<InstanceRecord> Instances() { return InstanceTable(*store_).List("web").value(); }

  std::map<std::string, int> States() {
    std::map<std::string, int> out;
    auto list = InstanceTable(*store_).List("web").value();
    for (const auto& r : list) out[InstanceStateName(r.state)]++;
    return out;
  }

  // Real time, bounded: for what the reconciler's stop worker does.
  template <typename F>
  static bool WaitFor(F done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  int EventsContaining(const std::string& needle) {
    int n = 0;
    auto events = events_->Read("web", 0).value();
    for (const auto& e : events) n += e.message.find(needle) != std::string::npos;
    return n;
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<EndpointRegistry> registry_;
  FakeCloud cloud_;
  FakeNginx nginx_;
  FakeHealth health_;
  FixedPolicy policy_;
  std::map<std::string, int> open_conns_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerTest, LaunchesAtMostRampLimitPerRound) {
  Manage();
  Make();
  policy_.target = 5;
  Round();
  EXPECT_EQ(cloud_.launches, 2);
  Round();
  EXPECT_EQ(cloud_.launches, 4);
  Round();
  EXPECT_EQ(cloud_.launches, 5);
  Round();
  EXPECT_EQ(cloud_.launches, 5);
  EXPECT_EQ(States()["active"], 5);
  EXPECT_EQ(nginx_.members["web"].size(), 5u);
  EXPECT_GE(EventsContaining("fixed target 5: launching 2"), 2);
}

TEST_F(ReconcilerTest, InstancesJoinTheUpstreamOnlyWhenHealthy) {
  Manage();
  Make();
  policy_.target = 1;
  Round();  // launched: starting, not a member
  EXPECT_EQ(States()["starting"], 1);
  EXPECT_TRUE(nginx_.members["web"].empty());
  Round();  // health report says healthy → active → member
  EXPECT_EQ(States()["active"], 1);
  EXPECT_EQ(nginx_.members["web"].size(), 1u);
}

TEST_F(ReconcilerTest, FailedLaunchesBackOffExponentially) {
  Manage();
  Make();
  policy_.target = 1;
  cloud_.fail_launches = true;
  Round();
  EXPECT_EQ(cloud_.launches, 1);
  Round();  // 0.5 s later: within the 1 s backoff
  EXPECT_EQ(cloud_.launches, 1);
  Round();  // 1 s after the failure
  EXPECT_EQ(cloud_.launches, 2);
  for (int i = 0; i < 3; ++i) Round();  // next try 2 s after the second failure
  EXPECT_EQ(cloud_.launches, 2);
  Round();
  EXPECT_EQ(cloud_.launches, 3);
  Round();  // the owner sees the failure the host recorded
  EXPECT_EQ(States().size(), 0u) << "failed launches leave no records once their owner has seen them";
  cloud_.fail_launches = false;
  for (int i = 0; i < 10; ++i) Round();
  EXPECT_EQ(States()["active"], 1);
  EXPECT_EQ(cloud_.launches, 4);
}

TEST_F(ReconcilerTest, NeverExceedsSlots) {
  Manage();
  Make(/*slots=*/7);  // each instance costs 3
  policy_.target = 5;
  for (int i = 0; i < 5; ++i) Round();
  EXPECT_EQ(cloud_.launches, 2);
  EXPECT_EQ(EventsContaining("no free slots"), 1) << "said once, not every round";
  auto st = reconciler_->GetStatus("web");
  ASSERT_TRUE(st.has_value());
  EXPECT_NE(st->problem.find("no free slots: m1 has 6 of 7 used, an instance needs 3"), std::string::npos)
      << st->problem;
}

TEST_F(ReconcilerTest, ScaleDownDrainsUntilNoOpenConnections) {
  Manage();
  Make();
  policy_.target = 2;
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(States()["active"], 2);
  policy_.target = 1;
  std::string victim;
  Round();
  for (const auto& r : Instances()) {
    if (r.state == InstanceState::kDraining) victim = r.address;
  }
  ASSERT_FALSE(victim.empty());
  EXPECT_EQ(nginx_.members["web"].size(), 1u) << "out of the upstream first";
  open_conns_[victim] = 2;
  for (int i = 0; i < 4; ++i) Round();
  EXPECT_EQ(States()["draining"], 1) << "kept while connections are open";
  EXPECT_EQ(cloud_.stops, 0);
  open_conns_[victim] = 0;
  Round();
  EXPECT_EQ(States()["draining"], 0);
  EXPECT_EQ(EventsContaining("drained: no open connections"), 1);
}

TEST_F(ReconcilerTest, DrainTimeoutStopsABusyInstance) {
  Manage();
  Make();
  policy_.target = 1;
  for (int i = 0; i < 2; ++i) Round();
  policy_.target = 0;
  Round();
  for (const auto& r : Instances()) open_conns_[r.address] = 5;
  for (int i = 0; i < 19; ++i) Round();  // 9.5 s of the 10 s drain_timeout
  EXPECT_EQ(States()["draining"], 1);
  Round();
  Round();
  EXPECT_EQ(States()["draining"], 0);
  EXPECT_EQ(EventsContaining("drain_timeout 10s passed with 5 open connection(s)"), 1);
}

TEST_F(ReconcilerTest, UnhealthyInstanceIsReplaced) {
  Manage();
  Make();
  policy_.target = 1;
  for (int i = 0; i < 2; ++i) Round();
  ASSERT_EQ(States()["active"], 1);
  std::string id = Instances().front().id;
  health_.failing.insert(id);
  Round();  // errored → retired; the next round launches a replacement
  Round();
  Round();
  auto list = Instances();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_NE(list[0].id, id);
  EXPECT_EQ(list[0].state, InstanceState::kActive);
  EXPECT_EQ(EventsContaining("failed 3 health check(s) (connection refused)"), 2);  // transition + removal
}

TEST_F(ReconcilerTest, ExitedProcessIsReplacedAndStrayIsStopped) {
  Manage();
  Make();
  policy_.target = 1;
  for (int i = 0; i < 2; ++i) Round();
  std::string id = Instances().front().id;
  cloud_.running[id].running = false;
  cloud_.running[id].exit_code = 3;
  InstanceInfo stray;
  stray.instance_id = "web-stray";
  stray.endpoint = "web";
  stray.running = true;
  cloud_.running["web-stray"] = stray;
  Round();
  EXPECT_EQ(EventsContaining("exited with code 3"), 2);
  EXPECT_EQ(EventsContaining("web-stray"), 1);
  // The stray is really stopped (by the stop worker, so wait for it, bounded).
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(cloud_.mu);
    return cloud_.running.count("web-stray") == 0;
  })) << "the stray was reported but never stopped";
  for (int i = 0; i < 3; ++i) Round();
  EXPECT_EQ(States()["active"], 1);
}

TEST_F(ReconcilerTest, EndpointWhoseRecordNoLongerReadsKeepsItsInstancesAndSite) {
  Manage();
  Make();
  policy_.target = 2;
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(States()["active"], 2);
  ASSERT_EQ(nginx_.sites, 1u);
  int launches = cloud_.launches;
  ASSERT_TRUE(store_->Put(EndpointKey("web"), "{corrupted").ok());
  policy_.target = 5;  // the policy is not asked while the record is invalid
  for (int i = 0; i < 5; ++i) Round();
  EXPECT_EQ(States()["active"], 2) << "instances of an unreadable endpoint were touched";
  EXPECT_EQ(cloud_.launches, launches);
  EXPECT_EQ(cloud_.stops, 0);
  EXPECT_EQ(nginx_.sites, 1u) << "its site left nginx";
  EXPECT_EQ(nginx_.members["web"].size(), 2u);
  auto st = reconciler_->GetStatus("web");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state, "invalid");
  EXPECT_NE(st->problem.find("not an endpoint record"), std::string::npos) << st->problem;
  EXPECT_EQ(EventsContaining("does not read"), 1) << "said once";

  // A restarted agent (no memory of the record) keeps it too.
  Make();
  for (int i = 0; i < 3; ++i) Round();
  EXPECT_EQ(States()["active"], 2);
  EXPECT_EQ(nginx_.sites, 1u);

  // A good manage repairs it.
  Manage();
  policy_.target = 2;
  Round();
  EXPECT_EQ(reconciler_->GetStatus("web")->state, "running");
  EXPECT_EQ(EventsContaining("reads again"), 1);
}

TEST_F(ReconcilerTest, InstanceWhoseRecordDoesNotReadIsNotStopped) {
  Manage();
  Make();
  policy_.target = 1;
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(States()["active"], 1);
  std::string id = Instances().front().id;
  ASSERT_TRUE(store_->Put(InstanceKey("web", id), "[1,2").ok());
  for (int i = 0; i < 3; ++i) Round();
  {
    std::lock_guard<std::mutex> lock(cloud_.mu);
    EXPECT_EQ(cloud_.running.count(id), 1u) << "an instance whose record does not read was stopped";
  }
  EXPECT_EQ(cloud_.stops, 0);
}

TEST_F(ReconcilerTest, DrainSetElsewhereWaitsMinDrainAfterNginxHearsOfIt) {
  Manage();
  Make();
  policy_.target = 1;
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(States()["active"], 1);
  // As the API's drain does: the record turns draining, its time long past.
  InstanceRecord r = Instances().front();
  r.state = InstanceState::kDraining;
  r.state_since_ms = clock_.WallMillis() - 10000;
  ASSERT_TRUE(InstanceTable(*store_).Put(r).ok());
  ASSERT_TRUE(reconciler_->RunOnce().ok());
  EXPECT_TRUE(nginx_.members["web"].empty() || nginx_.members["web"].front().address != r.address)
      << "the draining instance must leave the upstream in this round";
  bool still_there = false;
  for (const auto& i : Instances()) still_there = still_there || i.id == r.id;
  EXPECT_TRUE(still_there) << "stopped before nginx was told to stop sending to it";
  clock_.Advance(Duration(1000));
  ASSERT_TRUE(reconciler_->RunOnce().ok());
  still_there = false;
  for (const auto& i : Instances()) still_there = still_there || i.id == r.id;
  EXPECT_FALSE(still_there) << "drained instance kept past min_drain";
}

TEST_F(ReconcilerTest, CordonedHostTakesNoNewPlacementsButKeepsWhatRuns) {
  Manage();
  Make();
  policy_.target = 1;
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(States()["active"], 1);
  ASSERT_TRUE(SetCordon(*store_, "m1", true).ok());
  policy_.target = 3;
  for (int i = 0; i < 3; ++i) Round();
  EXPECT_EQ(States()["active"], 1);
  EXPECT_EQ(cloud_.launches, 1);
  EXPECT_NE(reconciler_->GetStatus("web")->problem.find("cordoned"), std::string::npos);
  ASSERT_TRUE(SetCordon(*store_, "m1", false).ok());
  for (int i = 0; i < 3; ++i) Round();
  EXPECT_EQ(States()["active"], 3);
}

TEST_F(ReconcilerTest, StoreOutageFailsTheRoundWithoutTouchingInstances) {
  FaultyStore faulty(*store_);
  Manage();
  ReconcilerOptions o;
  o.manager = "m1";
  Reconciler r(o, faulty, *events_, nginx_, health_, std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &cloud_}},
               policy_, clock_, [](const std::string&) { return 0; });
  policy_.target = 2;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(r.RunOnce().ok());
    clock_.Advance(Duration(500));
  }
  ASSERT_EQ(States()["active"], 2);
  faulty.unavailable = true;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(r.RunOnce().ok());
    clock_.Advance(Duration(500));
  }
  EXPECT_EQ(cloud_.stops, 0);
  EXPECT_EQ(cloud_.running.size(), 2u);
  faulty.unavailable = false;
  ASSERT_TRUE(r.RunOnce().ok());
  EXPECT_EQ(States()["active"], 2);
  EXPECT_EQ(cloud_.launches, 2);
}

TEST_F(ReconcilerTest, StopDrainsEverythingAndUnmanageRemovesTheEndpoint) {
  Manage();
  Make();
  policy_.target = 3;
  for (int i = 0; i < 4; ++i) Round();
  ASSERT_EQ(States()["active"], 3);
  ASSERT_TRUE(registry_->SetState("web", EndpointState::kStopped).ok());
  Round();
  EXPECT_EQ(States()["draining"], 3) << "stop ignores the ramp limit";
  for (int i = 0; i < 3; ++i) Round();
  EXPECT_TRUE(States().empty());
  ASSERT_TRUE(registry_->SetState("web", EndpointState::kDeleting).ok());
  Round();
  EXPECT_TRUE(registry_->Get("web").status().IsNotFound());
}

}  // namespace
}  // namespace reactor
