// Moving state between SQLite and a real etcd cluster, and etcd backups:
// copy sqlite → etcd, snapshot etcd, restore the snapshot (through a
// temporary etcd the restore starts itself) into an empty store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "agent/store/etcd_store.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "agent/store/store_backup.h"
#include "agent/store/store_copy.h"
#include "etcd_fixture.h"

namespace reactor {
namespace {

class StoreCopyEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cluster_.Start(3), "");
    std::string tmpl = (std::filesystem::temp_directory_path() / "store_copy_etcd.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = SqliteStore::Open(dir_ + "/state.db", SystemClock::Get());
    ASSERT_TRUE(s.ok());
    sqlite_ = std::move(s).value();
    auto e = OpenStore(cluster_.Url(), SystemClock::Get());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    etcd_ = std::move(e).value();
  }
  void TearDown() override {
    etcd_.reset();
    sqlite_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  EtcdCluster cluster_;
  std::string dir_;
  std::unique_ptr<SqliteStore> sqlite_;
  std::unique_ptr<Store> etcd_;
};

TEST_F(StoreCopyEtcdTest, SqliteToEtcdThenSnapshotRestoresTheSameRecords) {
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(sqlite_->Put(EventKey("web", i), "e" + std::to_string(i)).ok());
  ASSERT_TRUE(sqlite_->Put(EndpointKey("web"), "ini").ok());
  ASSERT_TRUE(sqlite_->Put(InstanceKey("web", "p-1"), R"({"id":"p-1"})").ok());
  auto copied = CopyState(*sqlite_, *etcd_, false);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->copied, 302u);
  EXPECT_EQ(etcd_->GetPrefix(kKeyRoot)->size(), 302u);
  // Again: the target is no longer empty.
  EXPECT_TRUE(CopyState(*sqlite_, *etcd_, false).status().IsConflict());

  const std::string snapshot = dir_ + "/etcd.snapshot";
  ASSERT_TRUE(WriteStoreBackup(*etcd_, snapshot).ok());
  EXPECT_GT(std::filesystem::file_size(snapshot), 4096u);
  auto target = SqliteStore::Open(":memory:", SystemClock::Get());
  ASSERT_TRUE(target.ok());
  auto restored = RestoreBackup(snapshot, **target, false);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->copied, 302u);
  EXPECT_EQ((*target)->Get(InstanceKey("web", "p-1"))->value().value, R"({"id":"p-1"})");
  EXPECT_EQ((*target)->GetPrefix(EventPrefix("web"))->size(), 300u);
}

TEST_F(StoreCopyEtcdTest, GarbageIsNeitherASnapshotNorABackup) {
  const std::string junk = dir_ + "/junk";
  {
    std::ofstream out(junk);
    out << "not a backup\n";
  }
  auto r = RestoreBackup(junk, *etcd_, false);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("not an etcd snapshot or an SQLite backup"));
  EXPECT_TRUE(etcd_->GetPrefix(kKeyRoot)->empty());
}

}  // namespace
}  // namespace reactor
