#include "agent/store/store_copy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "agent/store/store_backup.h"
#include "fake_clock.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<SqliteStore> Open(const std::string& path, Clock& clock) {
  auto s = SqliteStore::Open(path, clock);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

class StoreCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "store_copy_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    from_ = Open(dir_ + "/from.db", clock_);
    to_ = Open(":memory:", clock_);
  }
  void TearDown() override {
    from_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<SqliteStore> from_, to_;
};

TEST_F(StoreCopyTest, CopiesEveryRecordInBatchesAndSkipsLeasedKeys) {
  for (int i = 0; i < 250; ++i) ASSERT_TRUE(from_->Put(EventKey("web", i), "event " + std::to_string(i)).ok());
  ASSERT_TRUE(from_->Put(EndpointKey("web"), R"({"ini":"[endpoint]"})").ok());
  ASSERT_TRUE(from_->Put(InstanceKey("web", "i-1"), R"({"id":"i-1"})").ok());
  ASSERT_TRUE(from_->Put("/elsewhere/x", "not ours").ok());
  auto lease = from_->GrantLease(Duration(60000));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(from_->Put(ManagerKey("host1"), "{}", *lease).ok());

  auto stats = CopyState(*from_, *to_, false);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->copied, 252u);
  EXPECT_EQ(stats->skipped_leased, 1u);
  EXPECT_EQ(stats->source_revision, *from_->Revision());
  EXPECT_EQ(to_->GetPrefix(EventPrefix("web"))->size(), 250u);
  EXPECT_EQ(to_->Get(InstanceKey("web", "i-1"))->value().value, R"({"id":"i-1"})");
  EXPECT_FALSE(to_->Get(ManagerKey("host1"))->has_value());
  EXPECT_FALSE(to_->Get("/elsewhere/x")->has_value());
  // 252 keys in transactions of at most 100: three revisions.
  EXPECT_EQ(*to_->Revision(), 3);
}

TEST_F(StoreCopyTest, RefusesANonEmptyTargetUnlessForced) {
  ASSERT_TRUE(from_->Put(EndpointKey("web"), "new").ok());
  ASSERT_TRUE(to_->Put(EndpointKey("old"), "old").ok());
  auto refused = CopyState(*from_, *to_, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsConflict());
  EXPECT_THAT(refused.status().message(), HasSubstr("--force"));
  EXPECT_TRUE(to_->Get(EndpointKey("old"))->has_value());  // untouched
  auto forced = CopyState(*from_, *to_, true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_FALSE(to_->Get(EndpointKey("old"))->has_value());
  EXPECT_EQ(to_->Get(EndpointKey("web"))->value().value, "new");
}

TEST_F(StoreCopyTest, SqliteBackupRestoresIntoAnEmptyStoreAndLeavesTheFileAlone) {
  ASSERT_TRUE(from_->Put(EndpointKey("web"), "ini").ok());
  ASSERT_TRUE(from_->Put(InstanceKey("web", "i-1"), "rec").ok());
  const std::string backup = dir_ + "/backup.db";
  ASSERT_TRUE(WriteStoreBackup(*from_, backup).ok());
  ASSERT_TRUE(from_->Put(EndpointKey("later"), "not in the backup").ok());
  const auto size_before = std::filesystem::file_size(backup);
  auto stats = RestoreBackup(backup, *to_, false);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->copied, 2u);
  EXPECT_EQ(to_->Get(InstanceKey("web", "i-1"))->value().value, "rec");
  EXPECT_FALSE(to_->Get(EndpointKey("later"))->has_value());
  EXPECT_EQ(std::filesystem::file_size(backup), size_before);
  // Into a non-empty store: refused.
  EXPECT_TRUE(RestoreBackup(backup, *to_, false).status().IsConflict());
}

TEST_F(StoreCopyTest, RestoreOfAMissingFileNamesIt) {
  auto r = RestoreBackup(dir_ + "/nope.db", *to_, false);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("nope.db"));
}

}  // namespace
}  // namespace reactor
