// Periodic etcd compaction (agent/store/etcd_compaction.h) over a scripted
// EtcdHttp answering with responses recorded from etcd 3.4.23. The real
// etcd is in tests/component/etcd_compaction_test.cc.
#include "agent/store/etcd_compaction.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "agent/store/etcd_codec.h"

namespace reactor {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class ScriptedHttp : public EtcdHttp {
 public:
  struct Call {
    std::string url;
    std::string body;
  };
  void AddReply(EtcdHttpReply r) {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.push_back(std::move(r));
  }
  /// Answers every POST without a scripted reply with `r`.
  void SetDefault(EtcdHttpReply r) {
    std::lock_guard<std::mutex> lock(mu_);
    default_ = std::move(r);
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  EtcdHttpReply Post(const EtcdHttpRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back({request.url, request.body});
    if (replies_.empty()) return default_;
    EtcdHttpReply r = replies_.front();
    replies_.pop_front();
    return r;
  }
  EtcdHttpReply Stream(const EtcdHttpRequest&, const std::function<bool(const std::string&)>&,
                       const std::atomic<bool>&) override {
    return {"no streams here", true, 0, {}};
  }

 private:
  std::mutex mu_;
  std::deque<EtcdHttpReply> replies_;
  EtcdHttpReply default_{"no scripted reply", true, 0, {}};
  std::vector<Call> calls_;
};

EtcdHttpReply Ok(const std::string& body) { return {"", false, 200, body}; }
EtcdHttpReply Error(long status, int code, const std::string& msg) {
  return {"", false, status, json{{"error", msg}, {"message", msg}, {"code", code}}.dump()};
}

std::string Header(int64_t revision) {
  return R"("header":{"cluster_id":"2273782573398864472","member_id":"6482395712621751450","revision":")" +
         std::to_string(revision) + R"(","raft_term":"2"})";
}
EtcdHttpReply ClaimWon(int64_t revision) {
  return Ok("{" + Header(revision) + R"(,"succeeded":true,"responses":[{"response_put":{"header":{"revision":")" +
            std::to_string(revision) + R"("}}}]})");
}
EtcdHttpReply ClaimLost(int64_t revision, int64_t version) {
  return Ok(
      "{" + Header(revision) + R"(,"responses":[{"response_range":{"header":{"revision":")" + std::to_string(revision) +
      R"("},"kvs":[{"key":"L3JlYWN0b3IvZXRjZC9jb21wYWN0aW9u","create_revision":"7","mod_revision":"7","version":")" +
      std::to_string(version) + R"(","value":"Ng=="}],"count":"1"}}]})");
}
EtcdHttpReply Compacted(int64_t revision) { return Ok("{" + Header(revision) + "}"); }
EtcdHttpReply AlreadyCompacted() { return Error(400, 11, "etcdserver: mvcc: required revision has been compacted"); }

class EtcdCompactionTest : public ::testing::Test {
 protected:
  EtcdCompactionTest() {
    auto http = std::make_unique<ScriptedHttp>();
    http_ = http.get();
    EtcdOptions o;
    o.endpoints = {"m1:2379", "m2:2379"};
    conn_ = std::make_unique<EtcdConnection>(o, std::move(http), [this](Duration d) {
      std::lock_guard<std::mutex> lock(mu_);
      slept_ += d;
    });
  }
  json Body(size_t i) { return json::parse(http_->calls().at(i).body); }
  std::string Url(size_t i) { return http_->calls().at(i).url; }

  ScriptedHttp* http_ = nullptr;
  std::unique_ptr<EtcdConnection> conn_;
  std::mutex mu_;
  Duration slept_{0};
};

TEST_F(EtcdCompactionTest, FirstTurnOnlyRecordsTheRevisionAndTheNextCompactsToIt) {
  EtcdCompaction c(*conn_, Duration(300000));
  http_->AddReply(ClaimWon(7));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kFirstTurn);
  ASSERT_EQ(http_->calls().size(), 1u);  // nothing a period old to compact to yet
  EXPECT_EQ(Url(0), "http://m1:2379/v3/kv/txn");
  EXPECT_EQ(Body(0)["compare"][0]["version"], "0");  // the key is absent at first

  http_->AddReply(ClaimWon(2007));
  http_->AddReply(Compacted(2008));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kCompacted);
  ASSERT_EQ(http_->calls().size(), 3u);
  EXPECT_EQ(Body(1)["compare"][0]["version"], "1");  // its own put of the last turn
  EXPECT_EQ(*etcd::Base64Decode(Body(1)["success"][0]["request_put"]["value"]), "7");
  EXPECT_EQ(Url(2), "http://m1:2379/v3/kv/compaction");
  // To the revision seen one period ago, not the current one; not physical,
  // so etcd answers at once and removes old revisions in the background.
  EXPECT_EQ(Body(2), json::parse(R"({"revision":"7"})"));
  EtcdCompactionStats s = c.stats();
  EXPECT_EQ(s.ticks, 2);
  EXPECT_EQ(s.compactions, 1);
  EXPECT_EQ(s.compacted_revision, 7);
  EXPECT_EQ(s.failures, 0);
}

TEST_F(EtcdCompactionTest, AnotherAgentsTurnSendsNoCompactionAndLearnsTheVersion) {
  EtcdCompaction c(*conn_, Duration(300000));
  http_->AddReply(ClaimLost(500, 41));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kNotMyTurn);
  ASSERT_EQ(http_->calls().size(), 1u);
  http_->AddReply(ClaimWon(900));
  http_->AddReply(Compacted(901));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kCompacted);
  ASSERT_EQ(http_->calls().size(), 3u);
  EXPECT_EQ(Body(1)["compare"][0]["version"], "41");
  EXPECT_EQ(Body(2)["revision"], "500");  // the revision it saw when it lost, one period ago
}

TEST_F(EtcdCompactionTest, AlreadyCompactedRevisionCountsAsDone) {
  EtcdCompaction c(*conn_, Duration(300000));
  http_->AddReply(ClaimWon(10));
  ASSERT_EQ(c.Tick(), EtcdCompaction::Outcome::kFirstTurn);
  http_->AddReply(ClaimWon(20));
  http_->AddReply(AlreadyCompacted());  // etcd's own auto-compaction got further
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kCompacted);
  EXPECT_EQ(http_->calls().size(), 3u);  // not sent again elsewhere
  EXPECT_EQ(c.stats().failures, 0);
  EXPECT_EQ(c.stats().compactions, 1);
}

TEST_F(EtcdCompactionTest, CompactionErrorIsCountedAndTheNextPeriodTriesAgain) {
  EtcdCompaction c(*conn_, Duration(300000));
  http_->AddReply(ClaimWon(10));
  ASSERT_EQ(c.Tick(), EtcdCompaction::Outcome::kFirstTurn);
  http_->AddReply(ClaimWon(20));
  http_->AddReply(Error(400, 11, "etcdserver: mvcc: required revision is a future revision"));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kFailed);
  EtcdCompactionStats s = c.stats();
  EXPECT_EQ(s.failures, 1);
  EXPECT_EQ(s.compactions, 0);
  EXPECT_THAT(s.last_error, HasSubstr("future revision"));
  EXPECT_THAT(s.last_error, HasSubstr("compacting to revision 10"));
  // Its turn moved on (version 2); the next period compacts again.
  http_->AddReply(ClaimWon(30));
  http_->AddReply(Compacted(31));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kCompacted);
  EXPECT_EQ(c.stats().last_error, "");
  EXPECT_EQ(c.stats().compacted_revision, 20);
}

TEST_F(EtcdCompactionTest, EtcdAwayFailsTheTickWithinItsBudgetAndKeepsTheOldRevision) {
  EtcdCompaction c(*conn_, Duration(300000));
  http_->AddReply(ClaimWon(10));
  ASSERT_EQ(c.Tick(), EtcdCompaction::Outcome::kFirstTurn);
  http_->SetDefault(Error(503, 14, "etcdserver: no leader"));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kFailed);
  EXPECT_THAT(c.stats().last_error, HasSubstr("no leader"));
  {
    // Backoff between members stays within the compaction's own budget, far
    // below the store's 8 s for callers.
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_LE(slept_, EtcdCompaction::kRetryBudget + Duration(1000));
  }
  // Back: it still compacts only to what it saw before the outage (older
  // revisions kept, never newer ones lost).
  http_->SetDefault({"no scripted reply", true, 0, {}});
  const size_t before = http_->calls().size();
  http_->AddReply(ClaimWon(40));
  http_->AddReply(Compacted(41));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kCompacted);
  EXPECT_EQ(Body(before)["compare"][0]["version"], "1");
  EXPECT_EQ(Body(before + 1)["revision"], "10");
}

TEST_F(EtcdCompactionTest, LostClaimAnswerIsNotSentAgainAndTheNextTickReadsTheVersion) {
  EtcdCompaction c(*conn_, Duration(300000));
  // The claim reached m1, which may have applied it; its answer was lost.
  http_->AddReply({"Recv failure: Connection reset by peer", false, 0, {}});
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kFailed);
  EXPECT_EQ(http_->calls().size(), 1u);
  EXPECT_THAT(c.stats().last_error, HasSubstr("may or may not have been applied"));
  http_->AddReply(ClaimLost(12, 1));  // it had: version 1 now
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kNotMyTurn);
  http_->AddReply(ClaimWon(20));
  http_->AddReply(Compacted(21));
  EXPECT_EQ(c.Tick(), EtcdCompaction::Outcome::kCompacted);
  EXPECT_EQ(Body(3)["revision"], "12");
}

TEST_F(EtcdCompactionTest, ThreadTicksEveryPeriodAndStopsOnDestruction) {
  http_->SetDefault(ClaimLost(5, 3));
  const auto start = std::chrono::steady_clock::now();
  {
    EtcdCompaction c(*conn_, Duration(20));
    c.Start();
    for (int i = 0; i < 500 && c.stats().ticks < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GE(c.stats().ticks, 3);
  }
  const size_t calls = http_->calls().size();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(http_->calls().size(), calls);  // stopped
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
}

}  // namespace
}  // namespace reactor
