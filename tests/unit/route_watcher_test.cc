// Route changes applied between rounds: the RouteWatcher hands each changed
// endpoint record to the NginxSync's site book at once, and a round that read
// the records before the change neither undoes it nor brings back what was
// deleted since. A real (in-memory) store and registry; a recording nginx.
#include "agent/runtime/route_watcher.h"

#include <gtest/gtest.h>

#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "reconciler_fakes.h"

namespace reactor {
namespace {

std::string Ini(int port, const std::string& path, const std::string& balance = "round_robin") {
  return "[endpoint]\nurl = http://127.0.0.1:" + std::to_string(port) + path +
         "\ncloud = process\n[cloud:process]\ncommand = /bin/true ${PORT}\n[loadbalancer:nginx]\nbalance = " + balance +
         "\n";
}

// Remembers the last site list it was given.
class RecordingNginx : public FakeNginx {
 public:
  Status ApplySites(const std::vector<EndpointConfig>& e) override {
    applied.clear();
    for (const auto& c : e) applied[c.name] = c;
    applies++;
    return FakeNginx::ApplySites(e);
  }
  std::map<std::string, EndpointConfig> applied;
  int applies = 0;
};

class RouteWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(SqliteStore::Open(":memory:", clock_)).value();
    events_ = std::make_unique<EventLog>(*store_, clock_);
  }

  // What a round reads, as the reconciler reads it.
  Round ReadRound() {
    Round r;
    r.endpoints = std::move(registry_->List(&r.endpoints_revision)).value();
    return r;
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<EndpointRegistry> registry_ = nullptr;
  RecordingNginx nginx_;
  std::unique_ptr<EventLog> events_;
};

TEST_F(RouteWatcherTest, AppliesAChangedRecordWithoutARound) {
  registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
  ASSERT_TRUE(registry_->Put("web", Ini(18080, "/web/"), "api").ok());
  NginxSync sync(nginx_, *events_);
  RouteWatcher watcher(*store_, sync, nginx_);
  ASSERT_TRUE(watcher.Step(Duration(0)));  // from now on
  sync.Push(ReadRound());
  ASSERT_EQ(nginx_.applied.count("web"), 1u);

  ASSERT_TRUE(registry_->Put("api", Ini(18080, "/api/"), "api").ok());
  ASSERT_TRUE(registry_->Set("web", "loadbalancer:nginx", "balance", "ip_hash").ok());
  ASSERT_TRUE(watcher.Step(Duration(1000)));
  ASSERT_EQ(nginx_.applied.count("api"), 1u) << "a new endpoint is routed without a round";
  EXPECT_EQ(nginx_.applied.at("web").lb.balance, Balance::kIpHash);
}

TEST_F(RouteWatcherTest, AppliesNothingBeforeTheFirstRound) {
  registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
  ASSERT_TRUE(registry_->Put("web", Ini(18080, "/web/"), "api").ok());
  NginxSync sync(nginx_, *events_);
  RouteWatcher watcher(*store_, sync, nginx_);
  ASSERT_TRUE(watcher.Step(Duration(0)));
  ASSERT_TRUE(registry_->Put("api", Ini(18080, "/api/"), "api").ok());
  ASSERT_TRUE(watcher.Step(Duration(1000)));
  // Only "api" is known to the book yet: applying it would drop "web".
  EXPECT_EQ(nginx_.applies, 0);
}

TEST_F(RouteWatcherTest, ARoundReadBeforeAChangeDoesNotUndoIt) {
  registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
  ASSERT_TRUE(registry_->Put("web", Ini(18080, "/web/"), "api").ok());
  ASSERT_TRUE(registry_->Put("old", Ini(18080, "/old/"), "api").ok());
  NginxSync sync(nginx_, *events_);
  RouteWatcher watcher(*store_, sync, nginx_);
  ASSERT_TRUE(watcher.Step(Duration(0)));
  sync.Push(ReadRound());

  Round stale = ReadRound();  // a long round reads here ...
  ASSERT_TRUE(registry_->Put("api", Ini(18080, "/api/"), "api").ok());
  ASSERT_TRUE(registry_->Set("web", "loadbalancer:nginx", "balance", "least_conn").ok());
  ASSERT_TRUE(registry_->Remove("old").ok());
  ASSERT_TRUE(watcher.Step(Duration(1000)));  // ... the changes are applied meanwhile ...
  EXPECT_EQ(nginx_.applied.count("old"), 0u);
  sync.Push(stale);  // ... and then the round pushes what it read
  EXPECT_EQ(nginx_.applied.count("api"), 1u) << "created after the round's read: kept";
  EXPECT_EQ(nginx_.applied.at("web").lb.balance, Balance::kLeastConn) << "the newer record stays";
  EXPECT_EQ(nginx_.applied.count("old"), 0u) << "deleted after the round's read: not brought back";

  sync.Push(ReadRound());  // the next round agrees
  EXPECT_EQ(nginx_.applied.size(), 2u);
  EXPECT_EQ(nginx_.applied.at("web").lb.balance, Balance::kLeastConn);
}

TEST_F(RouteWatcherTest, ARoundRemovesWhatWasDeletedBeforeItsRead) {
  registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
  ASSERT_TRUE(registry_->Put("web", Ini(18080, "/web/"), "api").ok());
  ASSERT_TRUE(registry_->Put("api", Ini(18080, "/api/"), "api").ok());
  NginxSync sync(nginx_, *events_);
  sync.Push(ReadRound());
  ASSERT_EQ(nginx_.applied.size(), 2u);
  // No watcher running: the round alone notices the deletion.
  ASSERT_TRUE(registry_->Remove("api").ok());
  sync.Push(ReadRound());
  EXPECT_EQ(nginx_.applied.count("api"), 0u);
  EXPECT_EQ(nginx_.applied.count("web"), 1u);
}

}  // namespace
}  // namespace reactor
