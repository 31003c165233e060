// The endpoint registry on a real in-memory store: records that no longer
// read, URL claims that make concurrent creation safe, and `set` on the
// stored text.
#include "agent/endpoint/endpoint_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "faulty_store.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Ini(int port, const std::string& path = "/", const std::string& extra = "") {
  return "[endpoint]\nurl = http://127.0.0.1:" + std::to_string(port) + path +
         "\ncloud = process\n[cloud:process]\ncommand = /bin/true ${PORT}\n" + extra;
}

class EndpointRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::move(SqliteStore::Open(":memory:", clock_)).value(); }
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(EndpointRegistryTest, CorruptRecordIsListedInvalidWithItsLastGoodConfig) {
  EndpointRegistry reg(*store_, nullptr);
  ASSERT_TRUE(reg.Put("web", Ini(18080), "api").ok());
  ASSERT_TRUE(reg.Put("api", Ini(18081), "api").ok());
  ASSERT_TRUE(reg.List().ok());  // the registry has read both once
  ASSERT_TRUE(store_->Put(EndpointKey("web"), "{this is not json").ok());

  auto list = reg.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u) << "a record that does not read is not dropped";
  const EndpointRecord& web = (*list)[1].name == "web" ? (*list)[1] : (*list)[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_THAT(web.problem, HasSubstr("not an endpoint record"));
  EXPECT_TRUE(web.config_known);
  EXPECT_EQ(web.config.url.port, 18080);

  // A fresh registry (the agent restarted) finds the last good copy in the store.
  EndpointRegistry fresh(*store_, nullptr);
  auto again = fresh.Get("web");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->problem.empty());
  EXPECT_TRUE(again->config_known);
  EXPECT_EQ(again->config.url.port, 18080);

  // manage with a good file repairs it.
  ASSERT_TRUE(fresh.Put("web", Ini(18080), "api").ok());
  EXPECT_TRUE(fresh.Get("web")->problem.empty());
}

TEST_F(EndpointRegistryTest, RecordThatNewRulesRefuseKeepsItsOtherKeys) {
  // As after an upgrade that no longer knows a key: written straight into the
  // store, with no last-good copy.
  std::string ini = Ini(18080, "/", "[scaling]\nmax_instances = 4\nshiny_new_key = 1\n");
  nlohmann::json rec = {{"name", "web"}, {"ini", ini}, {"state", "paused"}, {"source", "api"}};
  ASSERT_TRUE(store_->Put(EndpointKey("web"), rec.dump()).ok());
  EndpointRegistry reg(*store_, nullptr);
  auto got = reg.Get("web");
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->problem, HasSubstr("[scaling] shiny_new_key: unknown key"));
  EXPECT_TRUE(got->config_known);
  EXPECT_EQ(got->config.scaling.max_instances, 4) << "the keys that read are kept";
  EXPECT_EQ(got->state, EndpointState::kPaused);
}

TEST_F(EndpointRegistryTest, RecordWithNothingKnownIsStillListed) {
  ASSERT_TRUE(store_->Put(EndpointKey("web"), "garbage").ok());
  EndpointRegistry reg(*store_, nullptr);
  auto list = reg.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].config_known);
  EXPECT_FALSE((*list)[0].problem.empty());
  // Another endpoint may still be created (an unknown config claims nothing).
  EXPECT_TRUE(reg.Put("api", Ini(18080), "api").ok());
}

TEST_F(EndpointRegistryTest, SecondEndpointOnTheSameUrlLosesEvenInARace) {
  FaultyStore faulty(*store_);
  EndpointRegistry a(faulty, nullptr);
  EndpointRegistry b(*store_, nullptr);
  // b creates "two" on the same URL after a validated, just before a commits.
  Status b_result;
  faulty.BeforeNextCommit([&] { b_result = b.Put("two", Ini(18080), "api").status(); });
  auto r = a.Put("one", Ini(18080), "api");
  ASSERT_TRUE(b_result.ok()) << b_result.ToString();
  ASSERT_FALSE(r.ok()) << "both creations of one URL succeeded";
  EXPECT_TRUE(r.status().IsConflict()) << r.status().ToString();
  EXPECT_TRUE(a.Get("one").status().IsNotFound());
}

std::string HttpsIni(int port, const std::string& path) {
  return "[endpoint]\nurl = https://127.0.0.1:" + std::to_string(port) + path +
         "\ncloud = process\n[cloud:process]\ncommand = /bin/true ${PORT}\n"
         "[loadbalancer:nginx]\nssl_certificate = /etc/reactor/c.pem\nssl_key = /etc/reactor/k.pem\n";
}

TEST_F(EndpointRegistryTest, TwoSchemesOnOnePortCannotBothWinARace) {
  FaultyStore faulty(*store_);
  EndpointRegistry a(faulty, nullptr);
  EndpointRegistry b(*store_, nullptr);
  // b creates an https endpoint on the port after a validated its http one
  // there (different paths: no URL claim in common), just before a commits.
  Status b_result;
  faulty.BeforeNextCommit([&] { b_result = b.Put("secure", HttpsIni(18443, "/b/"), "api").status(); });
  auto r = a.Put("plain", Ini(18443, "/a/"), "api");
  ASSERT_TRUE(b_result.ok()) << b_result.ToString();
  ASSERT_FALSE(r.ok()) << "two schemes on one port";
  EXPECT_TRUE(r.status().IsConflict()) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("one port has one scheme"));
  EXPECT_TRUE(a.Get("plain").status().IsNotFound());
}

TEST_F(EndpointRegistryTest, WritersOnOnePortWithDifferentPathsBothSucceed) {
  FaultyStore faulty(*store_);
  EndpointRegistry a(faulty, nullptr);
  EndpointRegistry b(*store_, nullptr);
  // Same port, same scheme, another path: the loser of the port's guard
  // validates again and commits (no spurious 409).
  Status b_result;
  faulty.BeforeNextCommit([&] { b_result = b.Put("two", Ini(18080, "/two/"), "api").status(); });
  auto r = a.Put("one", Ini(18080, "/one/"), "api");
  ASSERT_TRUE(b_result.ok()) << b_result.ToString();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(a.Get("one").ok());
  EXPECT_TRUE(a.Get("two").ok());
}

TEST_F(EndpointRegistryTest, ConcurrentCreationsOfOneUrlHaveExactlyOneWinner) {
  for (int trial = 0; trial < 5; ++trial) {
    std::atomic<int> wins{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        EndpointRegistry reg(*store_, nullptr);
        if (reg.Put("t" + std::to_string(trial) + "-" + std::to_string(i), Ini(19000 + trial), "api").ok()) wins++;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(wins.load(), 1) << "trial " << trial;
  }
}

TEST_F(EndpointRegistryTest, ClaimFollowsUrlChangesAndRemoval) {
  EndpointRegistry reg(*store_, nullptr);
  ASSERT_TRUE(reg.Put("one", Ini(18080, "/a/"), "api").ok());
  ASSERT_TRUE(reg.Set("one", "endpoint", "url", "http://127.0.0.1:18080/b/").ok());
  EXPECT_TRUE(reg.Put("two", Ini(18080, "/a/"), "api").ok()) << "the old URL was released";
  EXPECT_FALSE(reg.Put("three", Ini(18080, "/b/"), "api").ok());
  ASSERT_TRUE(reg.Remove("one").ok());
  EXPECT_TRUE(reg.Put("three", Ini(18080, "/b/"), "api").ok()) << "removal released the URL";
  EXPECT_FALSE(store_->Get(UrlClaimKey("127.0.0.1:18080/a/"))->value().value.empty());
}

TEST_F(EndpointRegistryTest, LeftoverClaimOfAGoneEndpointIsTakenOver) {
  ASSERT_TRUE(store_->Put(UrlClaimKey("127.0.0.1:18080/"), "ghost").ok());
  EndpointRegistry reg(*store_, nullptr);
  EXPECT_TRUE(reg.Put("web", Ini(18080), "api").ok());
  EXPECT_EQ(store_->Get(UrlClaimKey("127.0.0.1:18080/"))->value().value, "web");
}

TEST_F(EndpointRegistryTest, SetKeepsKeysTheUserLeftOutFollowingTheirDefaults) {
  EndpointRegistry reg(*store_, nullptr);
  ASSERT_TRUE(reg.Put("web", Ini(18080), "api").ok());
  Status st = reg.Set("web", "health", "interval", "300ms");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = reg.Get("web");
  EXPECT_EQ(got->config.health.timeout, Duration(300));
  EXPECT_THAT(got->ini, Not(HasSubstr("timeout")));
}

}  // namespace
}  // namespace reactor
