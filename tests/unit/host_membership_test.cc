// Cluster membership on the real SQLite store (leases included), with real
// time: the keep-alive thread runs as in the agent.
#include "agent/cluster/host_membership.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "agent/cluster/cluster_view.h"
#include "agent/instances/instance_record.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "faulty_store.h"

namespace reactor {
namespace {

template <typename F>
bool Eventually(F f, int ms = 5000) {
  for (int i = 0; i < ms / 20; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

class HostMembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(SqliteStore::Open(":memory:", SystemClock::Get())).value();
    events_ = std::make_unique<EventLog>(*store_, SystemClock::Get());
  }
  HostMembership::Options Opts(const std::string& name, Duration ttl = Duration(1000)) {
    HostMembership::Options o;
    o.record.name = name;
    o.record.address = "198.18.0.1";
    o.record.slots = 10;
    o.lease_ttl = ttl;
    return o;
  }
  std::optional<ManagerView> View(const std::string& name) {
    auto list = ListManagers(*store_, SystemClock::Get().WallMillis());
    if (!list.ok()) return std::nullopt;
    for (auto& m : *list) {
      if (m.name == name) return m;
    }
    return std::nullopt;
  }
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<EventLog> events_;
};

TEST_F(HostMembershipTest, RegistersUnderALeaseAndLeavesOnDestruction) {
  {
    HostMembership m(Opts("h1"), *store_, *events_, SystemClock::Get());
    ASSERT_TRUE(m.Start().ok());
    auto kv = store_->Get(ManagerKey("h1"));
    ASSERT_TRUE(kv.ok() && kv->has_value());
    EXPECT_NE((*kv)->lease, 0) << "the record must live under the host's lease";
    EXPECT_GT(m.LeaseLeft().count(), 0);
    m.Update(7, 3);
    ASSERT_TRUE(Eventually([&] {
      auto v = View("h1");
      return v && v->slots_used == 7 && v->instances == 3 && v->state == "up";
    }));
    // Renewed past its TTL: still there after three TTLs, and its lease
    // time left (from the renewal its record carries) never runs out.
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    EXPECT_TRUE(store_->Get(ManagerKey("h1"))->has_value());
    auto v = View("h1");
    ASSERT_TRUE(v.has_value());
    EXPECT_GT(v->lease_left_ms, 0);
    EXPECT_LE(v->lease_left_ms, Opts("h1").lease_ttl.count());
  }
  EXPECT_FALSE(store_->Get(ManagerKey("h1"))->has_value()) << "a host that stops leaves at once";
}

TEST_F(HostMembershipTest, LeaseLostWhileTheStoreWasAwayIsRegainedAndSaid) {
  FaultyStore faulty(*store_);
  HostMembership m(Opts("h1"), faulty, *events_, SystemClock::Get());
  ASSERT_TRUE(m.Start().ok());
  faulty.unavailable = true;
  // The lease expires (1 s TTL) while the host cannot reach the store.
  ASSERT_TRUE(Eventually([&] { return !store_->Get(ManagerKey("h1"))->has_value(); }));
  EXPECT_EQ(m.LeaseLeft().count(), 0) << "the host must know its lease may be gone";
  faulty.unavailable = false;
  ASSERT_TRUE(Eventually([&] { return store_->Get(ManagerKey("h1"))->has_value(); }));
  auto events = events_->Read("", 0).value();
  bool said_lost = false, said_back = false;
  for (const auto& e : events) {
    said_lost = said_lost || e.message.find("cannot renew its lease") != std::string::npos;
    said_back = said_back || e.message.find("re-registered") != std::string::npos;
  }
  EXPECT_TRUE(said_lost);
  EXPECT_TRUE(said_back);
}

TEST_F(HostMembershipTest, ManagersShowCordonedAndGoneHosts) {
  HostMembership up(Opts("h1"), *store_, *events_, SystemClock::Get());
  HostMembership other(Opts("h2"), *store_, *events_, SystemClock::Get());
  ASSERT_TRUE(up.Start().ok());
  ASSERT_TRUE(other.Start().ok());
  ASSERT_TRUE(SetCordon(*store_, "h2", true).ok());
  // An instance record of a host with no live record: that host is gone.
  InstanceRecord r;
  r.id = "web-1";
  r.endpoint = "web";
  r.manager = "h3";
  r.cloud = "process";
  r.slots = 2;
  ASSERT_TRUE(InstanceTable(*store_).Put(r).ok());
  ASSERT_TRUE(store_->Put(OwnerKey("web"), "h1").ok());

  EXPECT_EQ(View("h1")->state, "up");
  EXPECT_EQ(View("h1")->owned, 1);
  EXPECT_EQ(View("h2")->state, "cordoned");
  auto gone = View("h3");
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->state, "gone");
  EXPECT_EQ(gone->instances, 1);
  EXPECT_EQ(gone->slots_used, 2);
  ASSERT_TRUE(IsCordoned(*store_, "h2").value());
  ASSERT_TRUE(SetCordon(*store_, "h2", false).ok());
  EXPECT_EQ(View("h2")->state, "up");
  EXPECT_FALSE(SetCordon(*store_, "a/b", true).ok());
}

TEST_F(HostMembershipTest, ADrainedHostShowsCordonedAndDrainingUntilUncordoned) {
  HostMembership h1(Opts("h1"), *store_, *events_, SystemClock::Get());
  ASSERT_TRUE(h1.Start().ok());
  EXPECT_FALSE(View("h1")->draining);
  ASSERT_TRUE(SetCordon(*store_, "h1", true).ok());
  EXPECT_FALSE(View("h1")->draining) << "a cordon alone is no drain";
  ASSERT_TRUE(SetDrain(*store_, "h1", true).ok());
  EXPECT_EQ(View("h1")->state, "cordoned");
  EXPECT_TRUE(View("h1")->draining);
  // What `managers uncordon` does: both keys go.
  ASSERT_TRUE(SetCordon(*store_, "h1", false).ok());
  ASSERT_TRUE(SetDrain(*store_, "h1", false).ok());
  EXPECT_EQ(View("h1")->state, "up");
  EXPECT_FALSE(View("h1")->draining);
}

}  // namespace
}  // namespace reactor
