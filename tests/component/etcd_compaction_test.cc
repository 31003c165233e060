// Periodic compaction (agent/store/etcd_compaction.h) against a real 3-member
// etcd on loopback: old revisions go, the store keeps working, a watch from
// a compacted revision says so and its caller recovers, and two agents on
// one etcd take turns.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/store/etcd_codec.h"
#include "agent/store/etcd_store.h"
#include "etcd_fixture.h"

namespace reactor {
namespace {

using nlohmann::json;

class EtcdCompactionComponent : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new EtcdCluster();
    problem_ = cluster_->Start(3);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(problem_, "") << "etcd cluster did not start"; }

  static std::unique_ptr<EtcdStore> Open(Duration retention) {
    EtcdOptions o;
    o.endpoints = cluster_->Endpoints();
    o.compaction_retention = retention;
    auto s = EtcdStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  /// The gateway's answer to a range of `key` at `revision`, read directly
  /// from member 0 (the store has no read at an old revision).
  static std::string RangeAt(const std::string& key, int64_t revision) {
    return cluster_->Post(0, "/v3/kv/range",
                          json{{"key", etcd::Base64Encode(key)}, {"revision", std::to_string(revision)}}.dump());
  }

  /// Waits (at most `limit`) until `store` has compacted to at least `revision`.
  static bool WaitCompactedTo(EtcdStore& store, int64_t revision, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (store.compaction_stats().compacted_revision >= revision) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static inline EtcdCluster* cluster_ = nullptr;
  static inline std::string problem_;
};

TEST_F(EtcdCompactionComponent, OldRevisionsGoWhileTheStoreKeepsWorking) {
  // The puts go through a store without compaction, so "before" is read
  // before any compaction can start.
  auto writer = Open(Duration(0));
  ASSERT_NE(writer, nullptr);
  const std::string key = "/reactor/test/compaction/counter";
  auto first = writer->Put(key, "0");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  int64_t last = *first;
  for (int i = 1; i < 300; ++i) {
    auto r = writer->Put(key, std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    last = *r;
  }
  // Before: every revision is there.
  EXPECT_NE(RangeAt(key, *first).find("\"kvs\""), std::string::npos) << RangeAt(key, *first);
  EXPECT_EQ(writer->compaction_stats().ticks, 0);

  auto store = Open(Duration(500));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WaitCompactedTo(*store, last, std::chrono::seconds(20)))
      << "compacted only to " << store->compaction_stats().compacted_revision << " of " << last
      << "; last error: " << store->compaction_stats().last_error;
  EtcdCompactionStats stats = store->compaction_stats();
  EXPECT_EQ(stats.failures, 0) << stats.last_error;

  // After: the puts older than the compacted revision are gone (reading at
  // them is refused); the current value stays.
  for (int64_t r : {*first, (*first + last) / 2}) {
    const std::string old = RangeAt(key, r);
    EXPECT_NE(old.find("required revision has been compacted"), std::string::npos) << "revision " << r << ": " << old;
  }

  // The store works on: current values, writes, compare-and-swap.
  auto now = store->Get(key);
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  ASSERT_TRUE(now->has_value());
  EXPECT_EQ((*now)->value, "299");
  auto cas = store->CompareAndSwap(key, (*now)->mod_revision, "after");
  ASSERT_TRUE(cas.ok()) << cas.status().ToString();

  // A watch from before the compaction comes back compacted; the caller
  // re-reads and watches from the read's revision, and sees the next change
  // (as event_log.cc and event_hub.cc do; compaction goes on every 500 ms
  // meanwhile, so a watch that fell behind again is re-read again).
  auto w = store->Watch("/reactor/test/compaction/", *first - 1, Duration(5000));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->compacted);
  int64_t rev = 0;
  auto kvs = store->GetPrefix("/reactor/test/compaction/", &rev);
  ASSERT_TRUE(kvs.ok()) << kvs.status().ToString();
  ASSERT_EQ(kvs->size(), 1u);
  EXPECT_EQ((*kvs)[0].value, "after");
  ASSERT_TRUE(store->Put(key, "next").ok());
  std::string seen;
  for (int i = 0; i < 10 && seen != "next"; ++i) {
    auto next = store->Watch("/reactor/test/compaction/", rev, Duration(2000));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (next->compacted) {
      auto again = store->GetPrefix("/reactor/test/compaction/", &rev);
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      ASSERT_EQ(again->size(), 1u);
      seen = (*again)[0].value;
      continue;
    }
    for (const WatchEvent& e : next->events) seen = e.kv.value;
    rev = next->revision;
  }
  EXPECT_EQ(seen, "next");
}

TEST_F(EtcdCompactionComponent, AgentsSharingOneEtcdTakeTurns) {
  auto check = Open(Duration(0));
  ASSERT_NE(check, nullptr);
  auto version = [&]() -> int64_t {
    auto turn = check->Get(EtcdCompactionKey());
    EXPECT_TRUE(turn.ok()) << turn.status().ToString();
    return turn.ok() && turn->has_value() ? (*turn)->version : 0;
  };
  const int64_t before = version();
  auto a = Open(Duration(300));
  auto b = Open(Duration(300));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         (a->compaction_stats().ticks < 6 || b->compaction_stats().ticks < 6)) {
    ASSERT_TRUE(a->Put("/reactor/test/turns/a", "x").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int64_t low = version();
  const EtcdCompactionStats sa = a->compaction_stats();
  const EtcdCompactionStats sb = b->compaction_stats();
  const int64_t high = version();
  ASSERT_GE(sa.ticks, 6);
  ASSERT_GE(sb.ticks, 6);
  EXPECT_EQ(sa.failures + sb.failures, 0) << sa.last_error << " / " << sb.last_error;
  // Every turn is one put of the key: the two agents' turns are its versions
  // (give or take a tick under way in each agent when `low` was read).
  EXPECT_GE(sa.turns + sb.turns, low - before - 2);
  EXPECT_LE(sa.turns + sb.turns, high - before);
  // One agent per period: the other's tick sends only the claim (a read),
  // never a second compaction.
  EXPECT_GE(sa.others_turns + sb.others_turns, 1);
  EXPECT_LT(sa.compactions + sb.compactions, sa.ticks + sb.ticks);
  EXPECT_EQ(sa.turns + sa.others_turns + sa.failures, sa.ticks);
  EXPECT_EQ(sb.turns + sb.others_turns + sb.failures, sb.ticks);
  std::printf(
      "two agents, 300 ms periods: a %lld ticks (%lld turns, %lld compactions), b %lld ticks (%lld turns, "
      "%lld compactions)\n",
      static_cast<long long>(sa.ticks), static_cast<long long>(sa.turns), static_cast<long long>(sa.compactions),
      static_cast<long long>(sb.ticks), static_cast<long long>(sb.turns), static_cast<long long>(sb.compactions));
}

TEST_F(EtcdCompactionComponent, OpenStoreTakesTheRetentionFromTheAgentsOptions) {
  StoreOptions options;
  EXPECT_EQ(options.etcd_compaction, Duration(5 * 60 * 1000));  // [agent] etcd_compaction's default
  options.etcd_compaction = Duration(200);
  auto opened = OpenStore(cluster_->Url(), SystemClock::Get(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* etcd = dynamic_cast<EtcdStore*>(opened->get());
  ASSERT_NE(etcd, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline && etcd->compaction_stats().ticks < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(etcd->compaction_stats().ticks, 2);
  EXPECT_EQ(etcd->compaction_stats().failures, 0) << etcd->compaction_stats().last_error;
}

}  // namespace
}  // namespace reactor
