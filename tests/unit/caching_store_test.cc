#include "agent/store/caching_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "agent/store/sqlite_store.h"
#include "faulty_store.h"
#include "fake_clock.h"

namespace reactor {
namespace {

using std::chrono::steady_clock;

// The real store's reads, counted: what the copy is there to save.
class ReadCountingStore : public FaultyStore {
 public:
  using FaultyStore::FaultyStore;
  std::atomic<int> reads{0};
  Result<std::optional<KeyValue>> Get(const std::string& key) override {
    ++reads;
    return FaultyStore::Get(key);
  }
  Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) override {
    ++reads;
    return FaultyStore::GetPrefix(prefix, revision);
  }
};

class CachingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(":memory:", clock_);
    ASSERT_TRUE(s.ok());
    real_ = std::move(s).value();
    ASSERT_TRUE(real_->Put("/c/before", "0").ok());
    auto base = std::make_unique<ReadCountingStore>(*real_);
    base_ = base.get();
    cache_ = std::make_unique<CachingStore>(std::move(base), std::vector<std::string>{"/c/"});
    ASSERT_TRUE(WaitFor([&] { return cache_->AllSynced(); })) << "the copy never loaded";
  }

  // Polls `done` for up to 5 s.
  template <typename F>
  bool WaitFor(F done) {
    const auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  std::string CachedValue(const std::string& key) {
    auto kv = cache_->Get(key);
    if (!kv.ok()) return "error: " + kv.status().ToString();
    return kv->has_value() ? (*kv)->value : "absent";
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> real_;  // also "another agent" writing directly
  ReadCountingStore* base_ = nullptr;
  std::unique_ptr<CachingStore> cache_;
};

TEST_F(CachingStoreTest, ReadsUnderACachedPrefixNeverReachTheRealStore) {
  const int before = base_->reads;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(CachedValue("/c/before"), "0");
    ASSERT_EQ(cache_->GetPrefix("/c/")->size(), 1u);
  }
  EXPECT_EQ(base_->reads, before);
  // Outside the cached prefixes every read is forwarded.
  ASSERT_TRUE(cache_->Get("/other/x").ok());
  EXPECT_EQ(base_->reads, before + 1);
}

TEST_F(CachingStoreTest, OwnWritesAreReadBackAtOnceWithTheRealRevisions) {
  ASSERT_TRUE(cache_->Put("/c/a", "1").ok());
  ASSERT_TRUE(cache_->Put("/c/a", "2").ok());
  auto cached = cache_->Get("/c/a");
  auto real = real_->Get("/c/a");
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_EQ((*cached)->value, "2");
  EXPECT_EQ((*cached)->mod_revision, (*real)->mod_revision);
  EXPECT_EQ((*cached)->create_revision, (*real)->create_revision);
  EXPECT_EQ((*cached)->version, (*real)->version);

  ASSERT_TRUE(cache_->Delete("/c/a").ok());
  EXPECT_EQ(CachedValue("/c/a"), "absent");
  ASSERT_TRUE(cache_->Put("/c/sub/x", "1").ok());
  ASSERT_TRUE(cache_->Put("/c/sub/y", "1").ok());
  ASSERT_TRUE(cache_->DeletePrefix("/c/sub/").ok());
  EXPECT_TRUE(cache_->GetPrefix("/c/sub/")->empty());
  // And the watch, arriving later with the older events, brings none back.
  ASSERT_TRUE(WaitFor([&] {
    int64_t rev = 0;
    auto kvs = cache_->GetPrefix("/c/", &rev);
    return kvs.ok() && rev >= *real_->Revision();
  }));
  EXPECT_EQ(CachedValue("/c/a"), "absent");
  EXPECT_TRUE(cache_->GetPrefix("/c/sub/")->empty());
  EXPECT_EQ(CachedValue("/c/before"), "0");
}

TEST_F(CachingStoreTest, AnotherWritersChangesArriveThroughTheWatch) {
  ASSERT_TRUE(real_->Put("/c/theirs", "1").ok());
  EXPECT_TRUE(WaitFor([&] { return CachedValue("/c/theirs") == "1"; }));
  ASSERT_TRUE(real_->Delete("/c/before").ok());
  EXPECT_TRUE(WaitFor([&] { return CachedValue("/c/before") == "absent"; }));
  // A compare-and-swap against a revision read from the copy reaches the real store.
  auto kv = cache_->Get("/c/theirs");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_TRUE(cache_->CompareAndSwap("/c/theirs", (*kv)->mod_revision, "2").ok());
  EXPECT_EQ(real_->Get("/c/theirs")->value().value, "2");
}

TEST_F(CachingStoreTest, AStaleReadMakesTheCompareAndSwapFailNotTheUpdateLost) {
  auto kv = cache_->Get("/c/before");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  ASSERT_TRUE(real_->Put("/c/before", "theirs").ok());  // the copy may not know yet
  auto r = cache_->CompareAndSwap("/c/before", (*kv)->mod_revision, "mine");
  EXPECT_TRUE(r.status().IsConflict()) << r.status().ToString();
  EXPECT_EQ(real_->Get("/c/before")->value().value, "theirs");
}

TEST_F(CachingStoreTest, WhileTheRealStoreIsAwayReadsFailAsItsOwnWouldAndResumeAfter) {
  base_->unavailable = true;
  // The first call that reaches it (a write, a keep-alive) finds it away ...
  EXPECT_EQ(cache_->Put("/c/x", "1").status().code(), Status::Code::kUnavailable);
  // ... and from then on reads go to it too, instead of serving what may be old.
  auto kv = cache_->Get("/c/before");
  EXPECT_EQ(kv.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(cache_->GetPrefix("/c/").status().code(), Status::Code::kUnavailable);
  base_->unavailable = false;
  EXPECT_EQ(CachedValue("/c/before"), "0");  // answered by the real store again
  ASSERT_TRUE(WaitFor([&] { return cache_->AllSynced(); }));
  const int reads = base_->reads;
  EXPECT_EQ(CachedValue("/c/before"), "0");
  EXPECT_EQ(base_->reads, reads) << "the copy answers again once the store is back";
}

TEST_F(CachingStoreTest, WatchUnderACachedPrefixDeliversEachEventOnceInOrder) {
  int64_t rev = 0;
  ASSERT_TRUE(cache_->GetPrefix("/c/", &rev).ok());
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(real_->Put(i % 2 ? "/c/odd/k" : "/c/even/k", std::to_string(i)).ok());
  });
  std::vector<std::string> seen;
  const auto deadline = steady_clock::now() + std::chrono::seconds(5);
  while (seen.size() < 10 && steady_clock::now() < deadline) {
    auto w = cache_->Watch("/c/odd/", rev, Duration(500));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_GE(w->revision, rev);
    for (const auto& e : w->events) {
      EXPECT_EQ(e.kv.key, "/c/odd/k");
      EXPECT_GT(e.kv.mod_revision, rev);
      seen.push_back(e.kv.value);
    }
    rev = w->revision;
  }
  writer.join();
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[i], std::to_string(2 * i + 1));
  // Nothing new: the watch waits out its timeout and returns no events.
  auto quiet = cache_->Watch("/c/odd/", rev, Duration(100));
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->events.empty());
}

TEST_F(CachingStoreTest, StopsItsThreadsPromptly) {
  const auto t0 = steady_clock::now();
  cache_.reset();
  EXPECT_LT(steady_clock::now() - t0, std::chrono::seconds(3));
}

}  // namespace
}  // namespace reactor
