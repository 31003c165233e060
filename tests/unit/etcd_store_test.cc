// EtcdStore's failover, retries and watch buffering over a scripted
// EtcdHttp that answers with responses recorded from etcd 3.4.23. The real
// cluster is in tests/component/store_conformance_test.cc.
#include "agent/store/etcd_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "agent/store/etcd_codec.h"

namespace reactor {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kHeader5 = R"("header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"2"})";

// Answers each POST with the next scripted reply and records the requests;
// streams are scripted as lists of lines.
class ScriptedHttp : public EtcdHttp {
 public:
  struct Call {
    std::string url;
    std::string body;
    std::string token;
  };
  struct StreamScript {
    std::vector<std::string> lines;
    EtcdHttpReply end;       // how the stream ends after its lines
    bool hold_open = false;  // after the lines, wait until stopped
  };

  void AddReply(EtcdHttpReply r) {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.push_back(std::move(r));
  }
  void AddStream(StreamScript s) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.push_back(std::move(s));
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<Call> stream_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_calls_;
  }

  EtcdHttpReply Post(const EtcdHttpRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back({request.url, request.body, request.auth_token});
    if (replies_.empty()) return {"no scripted reply", true, 0, {}};
    EtcdHttpReply r = replies_.front();
    replies_.pop_front();
    return r;
  }

  EtcdHttpReply Stream(const EtcdHttpRequest& request, const std::function<bool(const std::string&)>& on_line,
                       const std::atomic<bool>& stop) override {
    StreamScript s;
    {
      std::unique_lock<std::mutex> lock(mu_);
      stream_calls_.push_back({request.url, request.body, request.auth_token});
      if (streams_.empty()) return {"connection refused (no scripted stream)", true, 0, {}};
      s = streams_.front();
      streams_.pop_front();
    }
    for (const std::string& line : s.lines) {
      if (!on_line(line)) return {"", false, 200, {}};
    }
    if (s.hold_open) {
      // As curl's progress callback: notice `stop` within a short interval.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return s.end;
  }

 private:
  std::mutex mu_;
  std::deque<EtcdHttpReply> replies_;
  std::deque<StreamScript> streams_;
  std::vector<Call> calls_;
  std::vector<Call> stream_calls_;
};

EtcdHttpReply Ok(const std::string& body) { return {"", false, 200, body}; }
EtcdHttpReply Refused(const std::string& member) {
  return {member + ": Failed to connect to 127.0.0.1 port 2379: Connection refused", true, 0, {}};
}
EtcdHttpReply TimedOut() { return {"Operation timed out after 5000 milliseconds", false, 0, {}}; }
EtcdHttpReply GatewayError(long status, int code, const std::string& msg) {
  return {"", false, status, json{{"error", msg}, {"message", msg}, {"code", code}}.dump()};
}

std::string CreatedLine() { return "{\"result\":{" + kHeader5 + ",\"created\":true}}"; }
std::string PutEventLine(const std::string& key, int64_t rev) {
  return "{\"result\":{" + kHeader5 + ",\"events\":[{\"kv\":{\"key\":\"" + etcd::Base64Encode(key) +
         "\",\"create_revision\":\"" + std::to_string(rev) + "\",\"mod_revision\":\"" + std::to_string(rev) +
         "\",\"version\":\"1\",\"value\":\"MQ==\"}}]}}";
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<EtcdStore> Make(std::vector<std::string> endpoints = {"m1:2379", "m2:2379", "m3:2379"},
                                  std::string user = "", std::string password = "") {
    auto http = std::make_unique<ScriptedHttp>();
    http_ = http.get();
    EtcdOptions o;
    o.endpoints = std::move(endpoints);
    o.user = std::move(user);
    o.password = std::move(password);
    auto s = EtcdStore::Open(o, std::move(http), [this](Duration d) { sleeps_.push_back(d); });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }
  ScriptedHttp* http_ = nullptr;
  std::vector<Duration> sleeps_;
};

TEST_F(EtcdStoreTest, ReadMovesToTheNextMemberOnAConnectionError) {
  auto store = Make();
  http_->AddReply(Refused("m1"));
  http_->AddReply(Ok("{" + kHeader5 + "}"));
  auto rev = store->Revision();
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  EXPECT_EQ(*rev, 5);
  auto calls = http_->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].url, "http://m1:2379/v3/kv/range");
  EXPECT_EQ(calls[1].url, "http://m2:2379/v3/kv/range");
  ASSERT_EQ(sleeps_.size(), 1u);  // one backoff between the attempts
  // The member that answered stays current.
  http_->AddReply(Ok("{" + kHeader5 + "}"));
  ASSERT_TRUE(store->Revision().ok());
  EXPECT_EQ(http_->calls().back().url, "http://m2:2379/v3/kv/range");
}

TEST_F(EtcdStoreTest, MemberWithoutALeaderIsSkippedEvenForWrites) {
  auto store = Make();
  http_->AddReply(GatewayError(503, 14, "etcdserver: no leader"));
  http_->AddReply(Ok("{" + kHeader5 + ",\"succeeded\":true}"));
  auto r = store->Put("/a", "1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(http_->calls()[1].url, "http://m2:2379/v3/kv/txn");
}

TEST_F(EtcdStoreTest, ConditionalWriteWithUnknownOutcomeIsNotRepeatedAndSaysSo) {
  auto store = Make();
  http_->AddReply(TimedOut());
  http_->AddReply(Ok("{" + kHeader5 + ",\"succeeded\":true}"));  // must not be used
  auto r = store->CompareAndSwap("/a", 3, "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("may or may not have been applied"));
  EXPECT_EQ(http_->calls().size(), 1u);
}

TEST_F(EtcdStoreTest, CreateIfAbsentWhoseAnswerIsLostIsUnavailableNotALostRace) {
  auto store = Make();
  // m1 applied the create and died before answering. Sent again, m2 would
  // find the key and answer "not succeeded": the caller would believe
  // another agent won. It must hear "unknown" instead, and re-read.
  http_->AddReply({"Recv failure: Connection reset by peer", false, 0, {}});
  http_->AddReply(Ok("{" + kHeader5 + "}"));  // must not be used
  auto r = store->CompareAndSwap("/owner", 0, "me");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
  EXPECT_FALSE(r.status().IsConflict());
  EXPECT_THAT(r.status().message(), HasSubstr("may or may not have been applied"));
  EXPECT_EQ(http_->calls().size(), 1u);
}

TEST_F(EtcdStoreTest, ConditionalWriteRefusedBeforeSendingGoesToTheNextMember) {
  auto store = Make();
  http_->AddReply(Refused("m1"));
  http_->AddReply(Ok("{" + kHeader5 + ",\"succeeded\":true}"));
  auto r = store->CompareAndSwap("/owner", 0, "me");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(http_->calls().size(), 2u);
  EXPECT_EQ(http_->calls()[1].url, "http://m2:2379/v3/kv/txn");
}

TEST_F(EtcdStoreTest, CompactionIsOnByDefaultAndOffWhenTheRetentionIsZero) {
  EtcdOptions defaults;
  EXPECT_EQ(defaults.compaction_retention, Duration(5 * 60 * 1000));
  auto http = std::make_unique<ScriptedHttp>();
  EtcdOptions o;
  o.endpoints = {"m1:2379"};
  o.compaction_retention = Duration(0);
  auto s = EtcdStore::Open(o, std::move(http), [](Duration) {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->compaction_stats().ticks, 0);
}

TEST_F(EtcdStoreTest, AllMembersDownIsUnavailableNamingEachFailureWithBoundedAttempts) {
  auto store = Make();
  for (int i = 0; i < 20; ++i) http_->AddReply(Refused("m" + std::to_string(i % 3 + 1)));
  auto r = store->Get("/a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("no member of etcd://m1:2379,m2:2379,m3:2379 answered"));
  EXPECT_THAT(r.status().message(), HasSubstr("Connection refused"));
  // Once every member has refused, there is no one left to ask.
  EXPECT_EQ(http_->calls().size(), 3u);
  EXPECT_EQ(sleeps_, (std::vector<Duration>{Duration(50), Duration(100)}));
}

TEST_F(EtcdStoreTest, ElectionInProgressIsRetriedWithDoublingBackoffWithinTheBudget) {
  auto store = Make();
  for (int i = 0; i < 100; ++i) http_->AddReply(GatewayError(503, 14, "etcdserver: no leader"));
  auto r = store->Get("/a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("no leader"));
  ASSERT_GE(sleeps_.size(), 4u);
  EXPECT_EQ(sleeps_[0], Duration(50));
  EXPECT_EQ(sleeps_[1], Duration(100));
  EXPECT_EQ(sleeps_[2], Duration(200));
  EXPECT_EQ(sleeps_.back(), Duration(1000));  // capped
  Duration total(0);
  for (Duration d : sleeps_) total += d;
  EXPECT_LE(total, Duration(8000 + 1000));  // the 8 s budget bounds it
  EXPECT_GE(total, Duration(7000));
}

TEST_F(EtcdStoreTest, UnconditionalWriteWithUnknownOutcomeIsSentToTheNextMember) {
  auto store = Make();
  http_->AddReply({"Recv failure: Connection reset by peer", false, 0, {}});
  http_->AddReply(Ok("{" + kHeader5 + ",\"succeeded\":true}"));
  auto r = store->Put("/a", "1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(http_->calls().size(), 2u);
  EXPECT_EQ(http_->calls()[1].url, "http://m2:2379/v3/kv/txn");
  EXPECT_EQ(http_->calls()[1].body, http_->calls()[0].body);
}

TEST_F(EtcdStoreTest, PutUnderAnUnknownLeaseIsNotFound) {
  auto store = Make({"m1:2379"});
  http_->AddReply(GatewayError(404, 5, "etcdserver: requested lease not found"));
  auto r = store->Put("/a", "1", 12345);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

TEST_F(EtcdStoreTest, KeepAliveOfAnExpiredLeaseIsNotFound) {
  auto store = Make({"m1:2379"});
  http_->AddReply(Ok("{\"result\":{" + kHeader5 + ",\"ID\":\"12345\"}}\n"));
  Status st = store->KeepAlive(12345);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  http_->AddReply(Ok("{\"result\":{" + kHeader5 + ",\"ID\":\"12345\",\"TTL\":\"5\"}}\n"));
  EXPECT_TRUE(store->KeepAlive(12345).ok());
}

TEST_F(EtcdStoreTest, FailedCompareAndSwapIsAConflict) {
  auto store = Make({"m1:2379"});
  http_->AddReply(Ok("{" + kHeader5 + "}"));  // no "succeeded"
  auto r = store->CompareAndSwap("/a", 3, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsConflict());
}

TEST_F(EtcdStoreTest, TooLargeTransactionIsRefusedWithoutARequest) {
  auto store = Make({"m1:2379"});
  Txn txn;
  for (int i = 0; i < 200; ++i) txn.success.push_back(Op::Put("/k" + std::to_string(i), "v"));
  auto r = store->Commit(txn);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_TRUE(http_->calls().empty());
}

TEST_F(EtcdStoreTest, GetPrefixReadsPagesAtTheFirstPagesRevision) {
  auto store = Make({"m1:2379"});
  store->set_page_size(2);
  auto kv = [](const std::string& k) {
    return "{\"key\":\"" + etcd::Base64Encode(k) +
           "\",\"create_revision\":\"1\",\"mod_revision\":\"1\",\"version\":\"1\"}";
  };
  http_->AddReply(
      Ok("{" + kHeader5 + ",\"kvs\":[" + kv("/p/a") + "," + kv("/p/b") + "],\"more\":true,\"count\":\"3\"}"));
  http_->AddReply(Ok("{\"header\":{\"revision\":\"9\"},\"kvs\":[" + kv("/p/c") + "],\"count\":\"1\"}"));
  int64_t rev = 0;
  auto r = store->GetPrefix("/p/", &rev);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[2].key, "/p/c");
  EXPECT_EQ(rev, 5);
  auto calls = http_->calls();
  ASSERT_EQ(calls.size(), 2u);
  json second = json::parse(calls[1].body);
  EXPECT_EQ(second["revision"], "5");
  EXPECT_EQ(second["key"], etcd::Base64Encode(std::string("/p/b") + '\0'));
  EXPECT_EQ(second["limit"], "2");
}

TEST_F(EtcdStoreTest, ExpiredAuthTokenIsRenewedOnce) {
  auto store = Make({"m1:2379"}, "reactor", "secret");
  http_->AddReply(Ok("{" + kHeader5 + ",\"token\":\"tok1\"}"));
  http_->AddReply(GatewayError(401, 16, "etcdserver: invalid auth token"));
  http_->AddReply(Ok("{" + kHeader5 + ",\"token\":\"tok2\"}"));
  http_->AddReply(Ok("{" + kHeader5 + "}"));
  auto rev = store->Revision();
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  auto calls = http_->calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].url, "http://m1:2379/v3/auth/authenticate");
  EXPECT_EQ(json::parse(calls[0].body)["name"], "reactor");
  EXPECT_EQ(calls[1].token, "tok1");
  EXPECT_EQ(calls[3].token, "tok2");
}

// Every thread needs a token at once (at start, or after etcd refused the
// old one); each authenticate costs etcd a raft write and a bcrypt check.
TEST(EtcdStoreAuth, ConcurrentCallersShareOneAuthentication) {
  class SlowAuthHttp : public EtcdHttp {
   public:
    std::atomic<int> authentications{0};
    EtcdHttpReply Post(const EtcdHttpRequest& request) override {
      if (request.url.find("/v3/auth/authenticate") != std::string::npos) {
        ++authentications;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return Ok("{" + kHeader5 + ",\"token\":\"tok\"}");
      }
      if (request.auth_token != "tok") return GatewayError(401, 16, "etcdserver: invalid auth token");
      return Ok("{" + kHeader5 + "}");
    }
    EtcdHttpReply Stream(const EtcdHttpRequest&, const std::function<bool(const std::string&)>&,
                         const std::atomic<bool>&) override {
      return {"connection refused", true, 0, {}};
    }
  };
  auto http = std::make_unique<SlowAuthHttp>();
  SlowAuthHttp* raw = http.get();
  EtcdOptions o;
  o.endpoints = {"m1:2379"};
  o.user = "reactor";
  o.password = "secret";
  auto store = EtcdStore::Open(o, std::move(http), [](Duration) {});
  ASSERT_TRUE(store.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (!(*store)->Revision().ok()) ++failed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(raw->authentications.load(), 1);
}

TEST_F(EtcdStoreTest, WrongPasswordIsUnauthenticatedWithoutRetries) {
  auto store = Make({"m1:2379", "m2:2379"}, "reactor", "wrong");
  http_->AddReply(GatewayError(400, 3, "etcdserver: authentication failed, invalid user ID or password"));
  auto rev = store->Revision();
  ASSERT_FALSE(rev.ok());
  EXPECT_THAT(rev.status().message(), HasSubstr("invalid user ID or password"));
  EXPECT_EQ(http_->calls().size(), 1u);
}

TEST_F(EtcdStoreTest, WatchReturnsStreamedEventsAndKeepsTheStreamOpenAcrossCalls) {
  auto store = Make({"m1:2379"});
  http_->AddStream({{CreatedLine(), PutEventLine("/p/a", 6), PutEventLine("/p/b", 7)}, {}, true});
  auto w = store->Watch("/p/", 5, Duration(2000));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  // Both events may arrive in one call or two.
  std::vector<WatchEvent> events = w->events;
  int64_t rev = w->revision;
  if (events.size() < 2) {
    auto w2 = store->Watch("/p/", rev, Duration(2000));
    ASSERT_TRUE(w2.ok());
    events.insert(events.end(), w2->events.begin(), w2->events.end());
    rev = w2->revision;
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv.key, "/p/a");
  EXPECT_EQ(rev, 7);
  auto quiet = store->Watch("/p/", 7, Duration(50));
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->events.empty());
  EXPECT_EQ(quiet->revision, 7);  // never moved forward by a timeout
  auto streams = http_->stream_calls();
  ASSERT_EQ(streams.size(), 1u);  // one stream for all three calls
  EXPECT_EQ(json::parse(streams[0].body)["create_request"]["start_revision"], "6");
}

TEST_F(EtcdStoreTest, BrokenWatchStreamResumesOnTheNextMemberAfterTheLastEvent) {
  auto store = Make({"m1:2379", "m2:2379"});
  // m1 delivers revision 6 and then its connection breaks.
  http_->AddStream(
      {{CreatedLine(), PutEventLine("/p/a", 6)}, {"Recv failure: Connection reset by peer", false, 0, {}}, false});
  http_->AddStream({{CreatedLine(), PutEventLine("/p/b", 8)}, {}, true});
  std::vector<WatchEvent> events;
  int64_t rev = 5;
  for (int i = 0; i < 10 && events.size() < 2; ++i) {
    auto w = store->Watch("/p/", rev, Duration(2000));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    events.insert(events.end(), w->events.begin(), w->events.end());
    rev = w->revision;
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kv.mod_revision, 8);
  auto streams = http_->stream_calls();
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[1].url, "http://m2:2379/v3/watch");
  EXPECT_EQ(json::parse(streams[1].body)["create_request"]["start_revision"], "7");
}

TEST_F(EtcdStoreTest, WatchCanceledForNoLeaderReopensElsewhere) {
  auto store = Make({"m1:2379", "m2:2379"});
  http_->AddStream(
      {{CreatedLine(), "{\"result\":{" + kHeader5 + ",\"canceled\":true,\"cancel_reason\":\"etcdserver: no leader\"}}"},
       {},
       false});
  http_->AddStream({{CreatedLine(), PutEventLine("/p/a", 6)}, {}, true});
  auto w = store->Watch("/p/", 5, Duration(3000));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->events.size(), 1u);
  EXPECT_EQ(http_->stream_calls().size(), 2u);
  EXPECT_EQ(http_->stream_calls()[1].url, "http://m2:2379/v3/watch");
}

TEST_F(EtcdStoreTest, CompactedWatchReportsCompacted) {
  auto store = Make({"m1:2379"});
  http_->AddStream(
      {{CreatedLine(),
        R"({"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"canceled":true,"compact_revision":"4"}})"},
       {},
       false});
  http_->AddReply(Ok("{" + kHeader5 + "}"));  // the Revision() after compaction
  auto w = store->Watch("/p/", 1, Duration(2000));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->compacted);
  EXPECT_EQ(w->revision, 5);
}

TEST_F(EtcdStoreTest, WatchWithNoMemberReachableIsUnavailable) {
  auto store = Make({"m1:2379"});
  // No scripted stream: every attempt is refused.
  auto w = store->Watch("/p/", 1, Duration(300));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(w.status().message(), HasSubstr("connection refused"));
}

}  // namespace
}  // namespace reactor
