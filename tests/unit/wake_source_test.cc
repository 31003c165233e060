// Held requests across hosts: each host records what its nginx holds under a
// lease; the deciding side reads the sum (wake_source.h).
#include "agent/scaler/wake_source.h"

#include <gtest/gtest.h>

#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"

namespace reactor {
namespace {

class WakeSourceTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_ = std::move(SqliteStore::Open(":memory:", clock_)).value();
};

TEST_F(WakeSourceTest, SumsTheHeldRequestsOfEveryHostWithTheEarliestStart) {
  StoreWakeRecorder a(*store_, clock_, "host-a", Duration(5000));
  StoreWakeRecorder b(*store_, clock_, "host-b", Duration(5000));
  ASSERT_TRUE(a.Record("web", 3, 1000).ok());
  ASSERT_TRUE(b.Record("web", 4, 900).ok());
  ASSERT_TRUE(b.Record("api", 1, 950).ok());
  StoreWakeSource source(*store_, clock_, Duration(0));
  WakeDemand web = source.Demand("web");
  EXPECT_EQ(web.held, 7);
  EXPECT_EQ(web.since_ms, 900);
  EXPECT_EQ(source.Demand("api").held, 1);
  EXPECT_EQ(source.Demand("web2").held, 0) << "the prefix of web does not match web2";
  auto kv = store_->Get(WakeKey("web", "host-a"));
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_NE((*kv)->lease, 0) << "under a lease: a host that dies takes its counts with it";
}

TEST_F(WakeSourceTest, AHoldThatEndsRemovesItsKey) {
  StoreWakeRecorder a(*store_, clock_, "host-a", Duration(5000));
  StoreWakeSource source(*store_, clock_, Duration(0));
  ASSERT_TRUE(a.Record("web", 2, 1000).ok());
  EXPECT_EQ(source.Demand("web").held, 2);
  ASSERT_TRUE(a.Record("web", 0, 0).ok());
  EXPECT_EQ(source.Demand("web").held, 0);
  EXPECT_TRUE(store_->GetPrefix(WakePrefix("web"))->empty());
  EXPECT_TRUE(a.Record("never", 0, 0).ok()) << "nothing to remove is fine";
}

TEST_F(WakeSourceTest, KeysGoWithTheLeaseAndComeBackOnTheNextRecord) {
  StoreWakeRecorder a(*store_, clock_, "host-a", Duration(3000));
  StoreWakeSource source(*store_, clock_, Duration(0));
  ASSERT_TRUE(a.Record("web", 2, 1000).ok());
  clock_.Advance(Duration(2000));
  ASSERT_TRUE(a.KeepAlive().ok());
  clock_.Advance(Duration(2000));
  EXPECT_EQ(source.Demand("web").held, 2) << "kept alive";
  clock_.Advance(Duration(3000));  // the agent stalled past the TTL
  EXPECT_EQ(source.Demand("web").held, 0);
  ASSERT_TRUE(a.Record("api", 1, 2000).ok());
  EXPECT_EQ(source.Demand("web").held, 2) << "a new lease carries every open hold again";
  EXPECT_EQ(source.Demand("api").held, 1);
}

TEST_F(WakeSourceTest, ReadsOncePerRefreshAndIgnoresWhatItCannotRead) {
  StoreWakeRecorder a(*store_, clock_, "host-a", Duration(5000));
  StoreWakeSource source(*store_, clock_, Duration(100));
  EXPECT_EQ(source.Demand("web").held, 0);
  ASSERT_TRUE(a.Record("web", 5, 1000).ok());
  EXPECT_EQ(source.Demand("web").held, 0) << "within the refresh the last read answers";
  clock_.Advance(Duration(100));
  EXPECT_EQ(source.Demand("web").held, 5);
  ASSERT_TRUE(store_->Put(WakeKey("web", "host-b"), "not json").ok());
  ASSERT_TRUE(store_->Put(WakeRootPrefix() + "stray", "{\"held\": 9}").ok());
  clock_.Advance(Duration(100));
  EXPECT_EQ(source.Demand("web").held, 5);
}

TEST_F(WakeSourceTest, AWatchSeesAnyHostsHoldAndTheNextDemandReadsIt) {
  StoreWakeRecorder b(*store_, clock_, "host-b", Duration(5000));
  StoreWakeSource source(*store_, clock_, Duration(60000));
  EXPECT_EQ(source.Demand("web").held, 0);
  auto quiet = source.WaitForChange(Duration(0));
  ASSERT_TRUE(quiet.ok());
  EXPECT_FALSE(*quiet);
  ASSERT_TRUE(b.Record("web", 3, 1000).ok());
  ASSERT_TRUE(store_->Put("/reactor/other", "x").ok());
  auto changed = source.WaitForChange(Duration(0));
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  EXPECT_EQ(source.Demand("web").held, 3) << "read again at once, refresh or not";
  auto again = source.WaitForChange(Duration(0));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "a key outside the wake prefix is no change";
}

TEST_F(WakeSourceTest, IgnoresAKeyItsWriterStoppedUpdating) {
  StoreWakeSource source(*store_, clock_, Duration(0), Duration(60000));
  const std::string v = "{\"held\": 4, \"since_ms\": 1, \"at_ms\": " + std::to_string(clock_.WallMillis()) + "}";
  ASSERT_TRUE(store_->Put(WakeKey("web", "host-a"), v).ok());
  EXPECT_EQ(source.Demand("web").held, 4);
  clock_.Advance(Duration(60001));
  EXPECT_EQ(source.Demand("web").held, 0);
}

}  // namespace
}  // namespace reactor
