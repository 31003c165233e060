// The event log on a real in-memory store with a clock the test moves.
#include "agent/events/event_log.h"

#include <gtest/gtest.h>

#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "faulty_store.h"

namespace reactor {
namespace {

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::move(SqliteStore::Open(":memory:", clock_)).value(); }
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(EventLogTest, SequenceNeverGoesBackWhenTheWallClockSteppedBackAcrossARestart) {
  uint64_t last = 0;
  {
    EventLog log(*store_, clock_);
    log.Record("web", "a", "first");
    log.Record("web", "a", "second");
    last = log.Read("web", 0).value().back().seq;
  }
  clock_.StepWall(-3600 * 1000);  // an hour back, then the agent restarts
  EventLog log(*store_, clock_);
  log.Record("web", "a", "third");
  auto events = log.Read("web", 0).value();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_GT(events.back().seq, last);
  EXPECT_EQ(events.back().message, "third");
  // A follower that saw `last` sees the new event.
  EXPECT_EQ(log.Read("web", last).value().size(), 1u);
}

TEST_F(EventLogTest, TwoHostsWritingAtTheSameMillisecondKeepBothEvents) {
  EventLog host_a(*store_, clock_);
  EventLog host_b(*store_, clock_);
  for (int i = 0; i < 5; ++i) {
    host_a.Record("web", "a", "from a " + std::to_string(i));
    host_b.Record("web", "b", "from b " + std::to_string(i));
  }
  auto events = host_a.Read("web", 0).value();
  ASSERT_EQ(events.size(), 10u);
  for (size_t i = 1; i < events.size(); ++i) EXPECT_LT(events[i - 1].seq, events[i].seq);
}

TEST_F(EventLogTest, TrimKeepsTheNewestAndDoesNotReadTheLogEveryRound) {
  FaultyStore counting(*store_);
  EventLog log(counting, clock_, /*retain=*/20);
  for (int i = 0; i < 50; ++i) log.Record("web", "k", "event " + std::to_string(i));
  ASSERT_TRUE(log.Trim("web").ok());
  auto events = log.Read("web", 0).value();
  ASSERT_EQ(events.size(), 20u);
  EXPECT_EQ(events.back().message, "event 49");
  int before = counting.calls;
  for (int round = 0; round < 10; ++round) ASSERT_TRUE(log.Trim("web").ok());
  EXPECT_EQ(counting.calls, before) << "a Trim with nothing new read the store";
  for (int i = 0; i < 30; ++i) log.Record("web", "k", "more " + std::to_string(i));
  ASSERT_TRUE(log.Trim("web").ok());
  EXPECT_EQ(log.Read("web", 0).value().size(), 20u);
}

TEST_F(EventLogTest, UnreadableEventIsShownNotThrown) {
  EventLog log(*store_, clock_);
  ASSERT_TRUE(store_->Put(EventKey("web", 5), R"({"time":"yesterday","kind":3})").ok());
  auto events = log.Read("web", 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "unreadable");
}

}  // namespace
}  // namespace reactor
