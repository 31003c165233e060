// The event hub: one store watch fans events out to any number of readers;
// a reader that falls behind the ring is told to re-read the history.
#include <gtest/gtest.h>

#include "agent/api/event_hub.h"
#include "agent/events/event_log.h"
#include "fake_clock.h"

namespace reactor {
namespace {

class EventHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite::memory:", clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    log_ = std::make_unique<EventLog>(*store_, clock_);
  }
  // Waits (bounded) until the hub has delivered `n` events after `cursor`.
  std::vector<HubEvent> Collect(EventHub& hub, uint64_t* cursor, size_t n, bool* gap = nullptr) {
    std::vector<HubEvent> out;
    for (int i = 0; i < 50 && out.size() < n; ++i) {
      EventHub::Batch b = hub.Next(*cursor, Duration(100));
      *cursor = b.cursor;
      if (gap && b.gap) *gap = true;
      out.insert(out.end(), b.events.begin(), b.events.end());
    }
    return out;
  }
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<EventLog> log_;
};

TEST_F(EventHubTest, DeliversRecordedEventsToEveryReaderInOrder) {
  EventHub hub(*store_);
  ASSERT_TRUE(hub.Start().ok());
  uint64_t a = hub.Cursor(), b = hub.Cursor();
  log_->Record("web", "state", "running → stopped");
  log_->Record("", "reload", "nginx reloaded");
  log_->Record("web", "state", "stopped → running");
  auto ea = Collect(hub, &a, 3);
  auto eb = Collect(hub, &b, 3);
  ASSERT_EQ(ea.size(), 3u);
  ASSERT_EQ(eb.size(), 3u);
  EXPECT_EQ(ea[0].log, "web");
  EXPECT_EQ(ea[0].event.message, "running → stopped");
  EXPECT_EQ(ea[1].log, "_agent");
  EXPECT_EQ(ea[1].event.kind, "reload");
  EXPECT_LT(ea[0].event.seq, ea[2].event.seq);
  EXPECT_EQ(eb[2].event.message, "stopped → running");
  hub.Stop();
}

TEST_F(EventHubTest, TimesOutWithNothingAndStopWakesReaders) {
  EventHub hub(*store_);
  ASSERT_TRUE(hub.Start().ok());
  EventHub::Batch b = hub.Next(hub.Cursor(), Duration(50));
  EXPECT_TRUE(b.events.empty());
  EXPECT_FALSE(b.stopped);
  hub.Stop();
  b = hub.Next(hub.Cursor(), Duration(10000));
  EXPECT_TRUE(b.stopped);
}

TEST_F(EventHubTest, AReaderBehindTheRingIsToldOfTheGap) {
  EventHub hub(*store_, /*capacity=*/2);
  ASSERT_TRUE(hub.Start().ok());
  uint64_t slow = hub.Cursor();
  for (int i = 0; i < 5; ++i) log_->Record("web", "k", "m" + std::to_string(i));
  for (int i = 0; i < 100 && hub.Cursor() < slow + 5; ++i) hub.Next(hub.Cursor(), Duration(50));
  ASSERT_EQ(hub.Cursor(), slow + 5);
  EventHub::Batch b = hub.Next(slow, Duration(100));
  EXPECT_TRUE(b.gap);
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events.back().event.message, "m4");
  hub.Stop();
}

TEST(StreamSlots, RefusesBeyondTheCapAndReusesReleasedSlots) {
  StreamSlots slots(2);
  EXPECT_TRUE(slots.TryAcquire());
  EXPECT_TRUE(slots.TryAcquire());
  EXPECT_FALSE(slots.TryAcquire());
  EXPECT_EQ(slots.InUse(), 2);
  slots.Release();
  EXPECT_TRUE(slots.TryAcquire());
}

}  // namespace
}  // namespace reactor
