// Clock faults (issue 10): the wall clock steps back or forward while the
// agent runs (NTP, an operator), the monotonic clock does not. What reads
// the wall clock must not go backwards or act on the jump.
#include <gtest/gtest.h>

#include "agent/events/event_log.h"
#include "agent/runtime/reconciler.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "reconciler_fakes.h"

namespace reactor {
namespace {

class ClockFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::move(SqliteStore::Open(":memory:", clock_)).value(); }
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

// Without a restart in between (the restart case: event_log_test.cc).
TEST_F(ClockFaultsTest, EventSequenceNeverGoesBackWhileTheWallClockStepsBackAndForth) {
  EventLog log(*store_, clock_);
  uint64_t last = 0;
  const int64_t steps[] = {0, -3600 * 1000, 5, 7200 * 1000, -7200 * 1000, -1, 0};
  int n = 0;
  for (int64_t step : steps) {
    clock_.StepWall(step);
    for (int i = 0; i < 3; ++i) {
      log.Record("web", "test", "event " + std::to_string(n++));
      log.Record("", "test", "agent event");
      auto events = log.Read("web", last).value();
      ASSERT_EQ(events.size(), 1u) << "a follower that saw seq " << last << " missed an event (step " << step << ")";
      EXPECT_GT(events[0].seq, last);
      last = events[0].seq;
    }
  }
  auto all = log.Read("web", 0).value();
  ASSERT_EQ(all.size(), static_cast<size_t>(n));
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i].seq, all[i - 1].seq);
  EXPECT_EQ(all.back().message, "event " + std::to_string(n - 1));
}

// The reconciler on a host whose wall clock jumps an hour forward: start
// and drain timeouts run on the monotonic clock, so nothing is retired or
// stopped early (they used the records' wall times: a starting instance was
// retired, a busy draining one stopped, one second after the jump).
class ClockFaultsRoundTest : public ClockFaultsTest {
 protected:
  void SetUp() override {
    ClockFaultsTest::SetUp();
    events_ = std::make_unique<EventLog>(*store_, clock_);
    ReconcilerOptions o;
    o.manager = "m1";
    o.min_drain = Duration(1000);
    reconciler_ = std::make_unique<Reconciler>(o, *store_, *events_, nginx_, health_,
                                               std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &cloud_}}, policy_,
                                               clock_, [this](const std::string& a) { return open_[a]; });
    auto put = EndpointRegistry(*store_, nullptr)
                   .Put("web",
                        "[endpoint]\nurl = http://127.0.0.1:18080/\ncloud = process\n[scaling]\nmin_instances = 0\n"
                        "max_instances = 5\ndrain_timeout = 10s\n[cloud:process]\ncommand = /bin/true\n",
                        "api");
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }
  void Round() {
    ASSERT_TRUE(reconciler_->RunOnce().ok());
    clock_.Advance(Duration(500));
  }
  std::vector<InstanceRecord> Instances() { return InstanceTable(*store_).List("web").value(); }

  std::unique_ptr<EventLog> events_;
  FakeCloud cloud_;
  FakeNginx nginx_;
  FakeHealth health_;
  FixedPolicy policy_;
  std::map<std::string, int> open_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ClockFaultsRoundTest, WallClockSteppedForwardDoesNotRetireAStartingInstance) {
  policy_.target = 1;
  Round();
  auto list = Instances();
  ASSERT_EQ(list.size(), 1u);
  health_.failing.insert(list[0].id);  // not healthy yet: still starting
  Round();
  clock_.StepWall(3600 * 1000);
  for (int i = 0; i < 4; ++i) Round();
  auto after = Instances();
  ASSERT_EQ(after.size(), 1u) << "a starting instance was retired 2 s after the wall clock jumped";
  EXPECT_EQ(after[0].id, list[0].id);
  EXPECT_EQ(after[0].state, InstanceState::kStarting);
  // The start timeout (60 s) still applies, on the monotonic clock.
  for (int i = 0; i < 120; ++i) Round();
  after = Instances();
  ASSERT_FALSE(after.empty());
  EXPECT_NE(after[0].id, list[0].id) << "never timed out";
}

TEST_F(ClockFaultsRoundTest, WallClockSteppedForwardDoesNotCutADrainShort) {
  policy_.target = 1;
  for (int i = 0; i < 3; ++i) Round();
  ASSERT_EQ(Instances().size(), 1u);
  ASSERT_EQ(Instances()[0].state, InstanceState::kActive);
  open_[Instances()[0].address] = 3;  // busy: drains until drain_timeout (10 s)
  policy_.target = 0;
  Round();
  ASSERT_EQ(Instances()[0].state, InstanceState::kDraining);
  clock_.StepWall(3600 * 1000);
  for (int i = 0; i < 4; ++i) Round();
  ASSERT_EQ(Instances().size(), 1u) << "a busy instance was stopped 2 s into its 10 s drain";
  EXPECT_EQ(Instances()[0].state, InstanceState::kDraining);
  for (int i = 0; i < 20; ++i) Round();
  EXPECT_TRUE(Instances().empty()) << "drain_timeout never passed";
}

}  // namespace
}  // namespace reactor
