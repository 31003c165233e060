#include "agent/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "agent/store/keys.h"
#include "fake_clock.h"

namespace reactor {
namespace {

using std::chrono::steady_clock;

std::unique_ptr<SqliteStore> OpenMemory(Clock& clock, SqliteStore::Options options = {}) {
  auto store = SqliteStore::Open(":memory:", clock, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return std::move(store).value();
}

int64_t Rev(Store& s) {
  auto r = s.Revision();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : -1;
}

std::vector<std::string> Keys(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> keys;
  for (const auto& kv : kvs) keys.push_back(kv.key);
  return keys;
}

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sqlite_store_test.XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_ = OpenMemory(clock_);
};

TEST_F(SqliteStoreTest, RevisionStartsAtZeroAndAddsOnePerWritingTransaction) {
  EXPECT_EQ(Rev(*store_), 0);
  EXPECT_EQ(*store_->Put("/a", "1"), 1);
  EXPECT_EQ(*store_->Put("/b", "2"), 2);
  EXPECT_EQ(Rev(*store_), 2);
  // Several writes in one transaction are one revision.
  Txn txn;
  txn.success = {Op::Put("/c", "3"), Op::Put("/d", "4"), Op::Delete("/a")};
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, 3);
  EXPECT_EQ(store_->Get("/c")->value().mod_revision, 3);
  EXPECT_EQ(store_->Get("/d")->value().mod_revision, 3);
}

TEST_F(SqliteStoreTest, TransactionThatWritesNothingKeepsTheRevision) {
  ASSERT_TRUE(store_->Put("/a", "1").ok());
  EXPECT_TRUE(store_->Delete("/absent").ok());
  EXPECT_TRUE(store_->DeletePrefix("/nothing/").ok());
  Txn txn;
  txn.compares.push_back(Compare::Absent("/a"));
  txn.success.push_back(Op::Put("/x", "y"));
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, 1);
  EXPECT_EQ(Rev(*store_), 1);
}

TEST_F(SqliteStoreTest, CreateRevisionModRevisionAndVersionFollowEtcd) {
  ASSERT_TRUE(store_->Put("/other", "x").ok());  // revision 1
  ASSERT_TRUE(store_->Put("/k", "v1").ok());     // 2
  auto kv = store_->Get("/k")->value();
  EXPECT_EQ(kv.value, "v1");
  EXPECT_EQ(kv.create_revision, 2);
  EXPECT_EQ(kv.mod_revision, 2);
  EXPECT_EQ(kv.version, 1);

  ASSERT_TRUE(store_->Put("/k", "v2").ok());  // 3
  kv = store_->Get("/k")->value();
  EXPECT_EQ(kv.create_revision, 2);
  EXPECT_EQ(kv.mod_revision, 3);
  EXPECT_EQ(kv.version, 2);

  ASSERT_TRUE(store_->Delete("/k").ok());  // 4
  EXPECT_FALSE(store_->Get("/k")->has_value());
  ASSERT_TRUE(store_->Put("/k", "v3").ok());  // 5: a new life
  kv = store_->Get("/k")->value();
  EXPECT_EQ(kv.create_revision, 5);
  EXPECT_EQ(kv.mod_revision, 5);
  EXPECT_EQ(kv.version, 1);
}

TEST_F(SqliteStoreTest, CompareAndSwapSucceedsOnTheExpectedRevisionOnly) {
  auto created = store_->CompareAndSwap("/k", 0, "a");
  ASSERT_TRUE(created.ok());
  auto again = store_->CompareAndSwap("/k", 0, "b");
  EXPECT_TRUE(again.status().IsConflict());
  auto swapped = store_->CompareAndSwap("/k", *created, "c");
  ASSERT_TRUE(swapped.ok());
  EXPECT_TRUE(store_->CompareAndSwap("/k", *created, "d").status().IsConflict());
  EXPECT_EQ(store_->Get("/k")->value().value, "c");
  EXPECT_EQ(Rev(*store_), *swapped);
}

TEST_F(SqliteStoreTest, FailedComparesRunTheFailureBranch) {
  ASSERT_TRUE(store_->Put("/k", "old").ok());
  Txn txn;
  txn.compares = {Compare::ValueIs("/k", "other")};
  txn.success = {Op::Put("/k", "won")};
  txn.failure = {Op::Put("/lost", "yes")};
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(store_->Get("/k")->value().value, "old");
  EXPECT_EQ(store_->Get("/lost")->value().value, "yes");
}

TEST_F(SqliteStoreTest, CompareTargetsAndOperators) {
  ASSERT_TRUE(store_->Put("/k", "b").ok());
  ASSERT_TRUE(store_->Put("/k", "b").ok());  // version 2, create 1, mod 2
  auto holds = [&](Compare c) {
    Txn txn;
    txn.compares.push_back(std::move(c));
    auto r = store_->Commit(txn);
    EXPECT_TRUE(r.ok());
    return r.ok() && r->succeeded;
  };
  using T = Compare::Target;
  using O = Compare::Op;
  EXPECT_TRUE(holds({"/k", T::kVersion, O::kEqual, 2, {}}));
  EXPECT_TRUE(holds({"/k", T::kCreateRevision, O::kEqual, 1, {}}));
  EXPECT_TRUE(holds({"/k", T::kModRevision, O::kGreater, 1, {}}));
  EXPECT_TRUE(holds({"/k", T::kModRevision, O::kLess, 3, {}}));
  EXPECT_FALSE(holds({"/k", T::kModRevision, O::kNotEqual, 2, {}}));
  EXPECT_TRUE(holds({"/k", T::kLease, O::kEqual, 0, {}}));
  EXPECT_TRUE(holds({"/k", T::kValue, O::kLess, 0, "c"}));
  EXPECT_TRUE(holds({"/k", T::kValue, O::kGreater, 0, "a"}));
  EXPECT_TRUE(holds({"/k", T::kValue, O::kNotEqual, 0, "x"}));
  // A missing key has all numbers 0 and never compares on value.
  EXPECT_TRUE(holds(Compare::Absent("/missing")));
  EXPECT_TRUE(holds({"/missing", T::kVersion, O::kEqual, 0, {}}));
  EXPECT_FALSE(holds(Compare::ValueIs("/missing", "")));
  EXPECT_FALSE(holds({"/missing", T::kValue, O::kNotEqual, 0, "x"}));
  // All compares must hold.
  Txn txn;
  txn.compares = {Compare::ValueIs("/k", "b"), Compare::Absent("/k")};
  txn.success = {Op::Put("/s", "1")};
  EXPECT_FALSE(store_->Commit(txn)->succeeded);
}

TEST_F(SqliteStoreTest, GetPrefixReturnsOnlyKeysUnderThePrefixInOrder) {
  for (const char* k : {"/e/web/2", "/e/web/1", "/e/web2/1", "/e/web", "/e/we", "/f"}) {
    ASSERT_TRUE(store_->Put(k, "v").ok());
  }
  int64_t revision = 0;
  auto kvs = store_->GetPrefix("/e/web/", &revision);
  ASSERT_TRUE(kvs.ok());
  EXPECT_EQ(Keys(*kvs), (std::vector<std::string>{"/e/web/1", "/e/web/2"}));
  EXPECT_EQ(revision, 6);
  // A prefix that is itself a prefix of other keys' segments.
  EXPECT_EQ(Keys(*store_->GetPrefix("/e/web")),
            (std::vector<std::string>{"/e/web", "/e/web/1", "/e/web/2", "/e/web2/1"}));
  EXPECT_EQ(store_->GetPrefix("")->size(), 6u);
  EXPECT_TRUE(store_->GetPrefix("/zzz")->empty());
}

TEST_F(SqliteStoreTest, DeletePrefixDeletesOnlyUnderThePrefix) {
  for (const char* k : {"/e/web/1", "/e/web/2", "/e/web2/1", "/e/web"}) ASSERT_TRUE(store_->Put(k, "v").ok());
  ASSERT_TRUE(store_->DeletePrefix("/e/web/").ok());
  EXPECT_EQ(Keys(*store_->GetPrefix("/")), (std::vector<std::string>{"/e/web", "/e/web2/1"}));
  EXPECT_EQ(Rev(*store_), 5);
}

TEST_F(SqliteStoreTest, DeletePrefixOfNothingDeletesEverything) {
  for (const char* k : {"/a", "/b/c", "zz", "\xff\xff"}) ASSERT_TRUE(store_->Put(k, "v").ok());
  ASSERT_TRUE(store_->DeletePrefix("").ok());
  EXPECT_TRUE(store_->GetPrefix("")->empty());
}

TEST_F(SqliteStoreTest, KeysAndValuesAreArbitraryBytes) {
  const std::string nul_key("/bin/\0x", 7);
  const std::string value("\0\xff\x01", 3);
  ASSERT_TRUE(store_->Put(nul_key, value).ok());
  ASSERT_TRUE(store_->Put("/bin/\xff", "ff").ok());
  ASSERT_TRUE(store_->Put("/bin/\xff\xff/x", "ffff").ok());
  ASSERT_TRUE(store_->Put("/bin0", "after").ok());
  ASSERT_TRUE(store_->Put("/empty", "").ok());
  EXPECT_EQ(store_->Get(nul_key)->value().value, value);
  EXPECT_EQ(store_->Get("/empty")->value().value, "");
  // Prefixes ending in 0xFF bytes have no simple successor.
  EXPECT_EQ(Keys(*store_->GetPrefix("/bin/\xff")), (std::vector<std::string>{"/bin/\xff", "/bin/\xff\xff/x"}));
  EXPECT_EQ(Keys(*store_->GetPrefix("/bin/\xff\xff")), (std::vector<std::string>{"/bin/\xff\xff/x"}));
  EXPECT_EQ(Keys(*store_->GetPrefix("/bin/")), (std::vector<std::string>{nul_key, "/bin/\xff", "/bin/\xff\xff/x"}));
  ASSERT_TRUE(store_->DeletePrefix("/bin/\xff").ok());
  EXPECT_EQ(Keys(*store_->GetPrefix("/bin")), (std::vector<std::string>{nul_key, "/bin0"}));
}

TEST_F(SqliteStoreTest, EmptyKeyIsRejected) {
  EXPECT_TRUE(store_->Put("", "v").status().IsInvalidArgument());
  EXPECT_TRUE(store_->Delete("").IsInvalidArgument());
}

TEST_F(SqliteStoreTest, LeaseExpiryDeletesItsKeysAndRecordsDeleteEvents) {
  auto lease = store_->GrantLease(Duration(10000));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store_->Put("/m/a", "1", *lease).ok());
  ASSERT_TRUE(store_->Put("/m/b", "2", *lease).ok());
  ASSERT_TRUE(store_->Put("/m/c", "3").ok());  // no lease
  EXPECT_EQ(store_->Get("/m/a")->value().lease, *lease);
  const int64_t before = Rev(*store_);

  clock_.Advance(Duration(9999));
  EXPECT_TRUE(store_->Get("/m/a")->has_value());
  clock_.Advance(Duration(1));
  ASSERT_TRUE(store_->ExpireLeases().ok());
  EXPECT_FALSE(store_->Get("/m/a")->has_value());
  EXPECT_FALSE(store_->Get("/m/b")->has_value());
  EXPECT_TRUE(store_->Get("/m/c")->has_value());
  EXPECT_EQ(Rev(*store_), before + 1);  // one revision for the whole expiry

  auto w = store_->Watch("/m/", before, Duration(0));
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->events.size(), 2u);
  for (const auto& e : w->events) {
    EXPECT_EQ(e.type, WatchEvent::Type::kDelete);
    EXPECT_EQ(e.kv.mod_revision, before + 1);
  }
  EXPECT_EQ(w->events[0].kv.key, "/m/a");
  EXPECT_EQ(w->events[1].kv.key, "/m/b");
  EXPECT_TRUE(store_->KeepAlive(*lease).IsNotFound());
}

TEST_F(SqliteStoreTest, LeasesExpireLazilyOnAnyOperation) {
  auto lease = store_->GrantLease(Duration(1000));
  ASSERT_TRUE(store_->Put("/m/a", "1", *lease).ok());
  clock_.Advance(Duration(1000));
  EXPECT_TRUE(store_->GetPrefix("/m/")->empty());
}

TEST_F(SqliteStoreTest, KeepAliveExtendsTheLease) {
  auto lease = store_->GrantLease(Duration(1000));
  ASSERT_TRUE(store_->Put("/m/a", "1", *lease).ok());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(Duration(900));
    ASSERT_TRUE(store_->KeepAlive(*lease).ok());
  }
  EXPECT_TRUE(store_->Get("/m/a")->has_value());
  EXPECT_EQ(Rev(*store_), 1);  // keep-alives are not writes
  clock_.Advance(Duration(1000));
  EXPECT_FALSE(store_->Get("/m/a")->has_value());
}

TEST_F(SqliteStoreTest, RevokeDeletesTheLeaseKeys) {
  auto lease = store_->GrantLease(Duration(1000));
  auto other = store_->GrantLease(Duration(1000));
  ASSERT_NE(*lease, *other);
  ASSERT_TRUE(store_->Put("/m/a", "1", *lease).ok());
  ASSERT_TRUE(store_->Put("/m/b", "1", *other).ok());
  ASSERT_TRUE(store_->RevokeLease(*lease).ok());
  EXPECT_FALSE(store_->Get("/m/a")->has_value());
  EXPECT_TRUE(store_->Get("/m/b")->has_value());
  EXPECT_EQ(Rev(*store_), 3);
  EXPECT_TRUE(store_->RevokeLease(*lease).IsNotFound());
  EXPECT_TRUE(store_->KeepAlive(*lease).IsNotFound());
  EXPECT_TRUE(store_->RevokeLease(12345).IsNotFound());
  EXPECT_TRUE(store_->GrantLease(Duration(0)).status().IsInvalidArgument());
}

TEST_F(SqliteStoreTest, PutUnderAnUnknownLeaseFailsWithNothingApplied) {
  Txn txn;
  txn.success = {Op::Put("/a", "1"), Op::Put("/b", "2", 999), Op::Put("/c", "3")};
  auto r = store_->Commit(txn);
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_TRUE(store_->GetPrefix("")->empty());
  EXPECT_EQ(Rev(*store_), 0);
  // An expired lease is as good as unknown.
  auto lease = store_->GrantLease(Duration(10));
  clock_.Advance(Duration(10));
  EXPECT_TRUE(store_->Put("/a", "1", *lease).status().IsNotFound());
}

TEST_F(SqliteStoreTest, PutWithoutALeaseDetachesTheKey) {
  auto lease = store_->GrantLease(Duration(1000));
  ASSERT_TRUE(store_->Put("/a", "1", *lease).ok());
  ASSERT_TRUE(store_->Put("/a", "2").ok());
  EXPECT_EQ(store_->Get("/a")->value().lease, 0);
  clock_.Advance(Duration(2000));
  EXPECT_TRUE(store_->Get("/a")->has_value());
}

TEST_F(SqliteStoreTest, WatchReturnsEventsAfterTheRevision) {
  ASSERT_TRUE(store_->Put("/w/a", "1").ok());  // 1
  ASSERT_TRUE(store_->Put("/x", "1").ok());    // 2
  ASSERT_TRUE(store_->Put("/w/a", "2").ok());  // 3
  ASSERT_TRUE(store_->Delete("/w/a").ok());    // 4
  ASSERT_TRUE(store_->Put("/w/b", "3").ok());  // 5

  auto w = store_->Watch("/w/", 1, Duration(1000));
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->compacted);
  EXPECT_EQ(w->revision, 5);
  ASSERT_EQ(w->events.size(), 3u);
  EXPECT_EQ(w->events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(w->events[0].kv.key, "/w/a");
  EXPECT_EQ(w->events[0].kv.value, "2");
  EXPECT_EQ(w->events[0].kv.mod_revision, 3);
  EXPECT_EQ(w->events[0].kv.create_revision, 1);
  EXPECT_EQ(w->events[0].kv.version, 2);
  EXPECT_EQ(w->events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(w->events[1].kv.key, "/w/a");
  EXPECT_EQ(w->events[1].kv.mod_revision, 4);
  EXPECT_EQ(w->events[2].kv.key, "/w/b");

  // Watching from the returned revision sees only what comes next.
  auto none = store_->Watch("/w/", w->revision, Duration(0));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->events.empty());
  // Everything from the start.
  EXPECT_EQ(store_->Watch("", 0, Duration(0))->events.size(), 5u);
}

TEST_F(SqliteStoreTest, WatchTimesOutWithNoEvents) {
  ASSERT_TRUE(store_->Put("/other", "1").ok());
  const auto start = steady_clock::now();
  auto w = store_->Watch("/w/", 0, Duration(150));
  const auto waited = steady_clock::now() - start;
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->events.empty());
  EXPECT_FALSE(w->compacted);
  EXPECT_EQ(w->revision, 1);
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(SqliteStoreTest, WatchWakesOnACommitFromAnotherThread) {
  const int64_t start_rev = Rev(*store_);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(store_->Put("/w/a", "1").ok());
  });
  const auto start = steady_clock::now();
  auto w = store_->Watch("/w/", start_rev, Duration(10000));
  const auto waited = steady_clock::now() - start;
  writer.join();
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->events.size(), 1u);
  EXPECT_EQ(w->events[0].kv.key, "/w/a");
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(SqliteStore, WatchReportsCompactionBeforeRetainedHistory) {
  FakeClock clock;
  SqliteStore::Options options;
  options.history_limit = 10;
  auto store = OpenMemory(clock, options);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(store->Put("/c/" + std::to_string(i % 3), "v").ok());
  auto old = store->Watch("/c/", 1, Duration(0));
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->compacted);
  EXPECT_TRUE(old->events.empty());
  EXPECT_EQ(old->revision, 30);
  // Recent history is still there.
  auto recent = store->Watch("/c/", 25, Duration(0));
  ASSERT_TRUE(recent.ok());
  EXPECT_FALSE(recent->compacted);
  EXPECT_EQ(recent->events.size(), 5u);
}

TEST(SqliteStore, HistoryIsPrunedByWholeRevisions) {
  FakeClock clock;
  SqliteStore::Options options;
  options.history_limit = 10;
  auto store = OpenMemory(clock, options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Put("/h/small", "v").ok());  // revisions 1..5
  Txn big;                                                                    // revision 6: more events than the limit
  for (int i = 0; i < 25; ++i) big.success.push_back(Op::Put("/h/" + std::to_string(i), "v"));
  ASSERT_TRUE(store->Commit(big).ok());
  // Revision 6 is kept whole; everything before it is gone.
  auto w = store->Watch("/h/", 5, Duration(0));
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->compacted);
  EXPECT_EQ(w->events.size(), 25u);
  EXPECT_TRUE(store->Watch("/h/", 4, Duration(0))->compacted);
}

TEST(SqliteStore, PersistsAcrossReopen) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  FakeClock clock;
  LeaseId lease = 0;
  {
    auto store = SqliteStore::Open(path, clock);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Put("/p/a", "1").ok());
    ASSERT_TRUE((*store)->Put("/p/a", "2").ok());
    lease = *(*store)->GrantLease(Duration(60000));
    ASSERT_TRUE((*store)->Put("/p/leased", "x", lease).ok());
  }
  auto store = SqliteStore::Open(path, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  SqliteStore& s = **store;
  EXPECT_EQ(Rev(s), 3);
  auto kv = s.Get("/p/a")->value();
  EXPECT_EQ(kv.value, "2");
  EXPECT_EQ(kv.version, 2);
  EXPECT_TRUE(s.Get("/p/leased")->has_value());
  EXPECT_TRUE(s.KeepAlive(lease).ok());
  EXPECT_EQ(*s.Put("/p/b", "3"), 4);                             // the revision continues
  EXPECT_EQ(s.Watch("/p/", 0, Duration(0))->events.size(), 4u);  // so does history
  EXPECT_NE(*s.GrantLease(Duration(1000)), lease);               // lease ids are not reused
}

TEST(SqliteStore, LeaseThatExpiredWhileClosedExpiresOnOpen) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  FakeClock clock;
  {
    auto store = SqliteStore::Open(path, clock);
    ASSERT_TRUE(store.ok());
    auto lease = (*store)->GrantLease(Duration(5000));
    ASSERT_TRUE((*store)->Put("/m/host", "x", *lease).ok());
  }
  clock.Advance(Duration(6000));
  auto store = SqliteStore::Open(path, clock);
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE((*store)->Get("/m/host")->has_value());
  EXPECT_EQ(Rev(**store), 2);
}

TEST(SqliteStore, WatchSeesACommitFromAnotherConnection) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  FakeClock clock;
  auto watcher = SqliteStore::Open(path, clock);
  auto writer = SqliteStore::Open(path, clock);
  ASSERT_TRUE(watcher.ok() && writer.ok());
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE((*writer)->Put("/w/x", "1").ok());
  });
  auto w = (*watcher)->Watch("/w/", 0, Duration(5000));
  t.join();
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->events.size(), 1u);
  EXPECT_EQ(w->revision, 1);
  // And the two connections agree on the revision for the next write.
  EXPECT_EQ(*(*watcher)->Put("/w/y", "2"), 2);
}

TEST(SqliteStore, ConcurrentCompareAndSwapIncrementsLoseNoUpdate) {
  TempDir dir;
  FakeClock clock;
  auto opened = SqliteStore::Open(dir.File("state.db"), clock);
  ASSERT_TRUE(opened.ok());
  SqliteStore& store = **opened;
  ASSERT_TRUE(store.Put("/counter", "0").ok());
  std::atomic<int> successes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto kv = store.Get("/counter");
        ASSERT_TRUE(kv.ok());
        const int value = std::stoi((*kv)->value);
        auto r = store.CompareAndSwap("/counter", (*kv)->mod_revision, std::to_string(value + 1));
        if (r.ok()) {
          ++successes;
        } else {
          ASSERT_TRUE(r.status().IsConflict()) << r.status().ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(successes.load(), 0);
  EXPECT_EQ(std::stoi(store.Get("/counter")->value().value), successes.load());
  EXPECT_EQ(Rev(store), 1 + successes.load());
}

TEST(SqliteStore, CompareAndSwapAcrossConnectionsLosesNoUpdate) {
  // Two connections on one file stand in for two processes: SQLite's write
  // lock, not our mutex, serialises them.
  TempDir dir;
  FakeClock clock;
  auto a = SqliteStore::Open(dir.File("state.db"), clock);
  auto b = SqliteStore::Open(dir.File("state.db"), clock);
  ASSERT_TRUE(a.ok() && b.ok());
  std::atomic<int> successes{0};
  auto increment = [&](SqliteStore& store) {
    for (int i = 0; i < 50; ++i) {
      auto kv = store.Get("/counter");
      ASSERT_TRUE(kv.ok()) << kv.status().ToString();
      const int value = kv->has_value() ? std::stoi((*kv)->value) : 0;
      auto r = store.CompareAndSwap("/counter", kv->has_value() ? (*kv)->mod_revision : 0, std::to_string(value + 1));
      if (r.ok()) {
        ++successes;
      } else {
        ASSERT_TRUE(r.status().IsConflict()) << r.status().ToString();
      }
    }
  };
  std::thread ta([&] { increment(**a); });
  std::thread tb([&] { increment(**b); });
  ta.join();
  tb.join();
  EXPECT_EQ(std::stoi((*a)->Get("/counter")->value().value), successes.load());
  EXPECT_EQ(Rev(**b), successes.load());
}

TEST(SqliteStore, OpenFailsClearlyOnAFileThatIsNotADatabase) {
  TempDir dir;
  const std::string path = dir.File("junk.db");
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("this is not an sqlite database, just some text long enough to be a header", f);
    fclose(f);
  }
  FakeClock clock;
  auto store = SqliteStore::Open(path, clock);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().ToString();
}

TEST(SqliteStoreOpen, AcceptsSqliteUrls) {
  TempDir dir;
  FakeClock clock;
  auto mem = OpenStore("sqlite::memory:", clock);
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  EXPECT_TRUE((*mem)->Put("/a", "b").ok());
  auto file = OpenStore("sqlite:" + dir.File("state.db"), clock);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir.File("state.db")));
}

TEST(SqliteStoreOpen, MissingDirectoryIsAnIOErrorNamingIt) {
  TempDir dir;
  FakeClock clock;
  const std::string missing = dir.File("no/such/dir");
  auto r = OpenStore("sqlite:" + missing + "/state.db", clock);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find(missing), std::string::npos) << r.status().ToString();
}

TEST(SqliteStoreOpen, OpensEtcdWithoutContactingItAndRejectsUnknownUrls) {
  FakeClock clock;
  // Nothing listens there: opening still works (the agent starts while etcd
  // is away); calls say why they fail.
  auto etcd = OpenStore("etcd://127.0.0.1:1,127.0.0.1:2", clock);
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  auto rev = (*etcd)->Revision();
  ASSERT_FALSE(rev.ok());
  EXPECT_EQ(rev.status().code(), Status::Code::kUnavailable) << rev.status().ToString();
  for (const char* url : {"etcd://", "etcd://host", "etcd://h:1,", "etcd://h:1/path"}) {
    auto r = OpenStore(url, clock);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << url;
  }
  for (const char* url : {"", "sqlite:", "mysql://x", "/var/lib/reactor/state.db"}) {
    auto r = OpenStore(url, clock);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << url;
    EXPECT_NE(r.status().message().find("sqlite:"), std::string::npos) << url;
  }
}

TEST(SqliteStoreOpen, EtcdPasswordFileMustBeReadable) {
  FakeClock clock;
  StoreOptions options;
  options.etcd_user = "reactor";
  options.etcd_password_file = "/nonexistent/etcd-password";
  auto r = OpenStore("etcd://127.0.0.1:2379", clock, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find("etcd_password_file /nonexistent/etcd-password"), std::string::npos);
}

TEST(SqliteStoreKeys, LayoutIsByEndpoint) {
  EXPECT_EQ(EndpointKey("web"), "/reactor/endpoints/web");
  EXPECT_EQ(InstanceKey("web", "i-1"), "/reactor/instances/web/i-1");
  EXPECT_EQ(InstancePrefix("web"), "/reactor/instances/web/");
  EXPECT_EQ(EventKey("web", 42), "/reactor/events/web/00000000000000000042");
  EXPECT_EQ(ManagerKey("host-a"), "/reactor/managers/host-a");
  EXPECT_EQ(CustomMetricKey("web", "queue"), "/reactor/metrics/web/queue");
  EXPECT_EQ(OwnerKey("web"), "/reactor/owners/web");
  EXPECT_EQ(CounterKey("web", "host-a"), "/reactor/counters/web/host-a");
  // Event keys sort in sequence order; one endpoint's prefix excludes another's.
  EXPECT_LT(EventKey("web", 9), EventKey("web", 10));
  EXPECT_NE(InstanceKey("web2", "i").rfind(InstancePrefix("web"), 0), 0u);
  EXPECT_TRUE(IsValidKeySegment("web-1"));
  EXPECT_FALSE(IsValidKeySegment(""));
  EXPECT_FALSE(IsValidKeySegment("a/b"));
}

}  // namespace
}  // namespace reactor
