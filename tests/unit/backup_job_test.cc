#include "agent/backup/backup_job.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "agent/store/sqlite_store.h"
#include "agent/store/store_copy.h"
#include "agent/telemetry/counting_store.h"
#include "fake_clock.h"
#include "fake_event_sink.h"
#include "faulty_store.h"

namespace reactor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr Duration kHour(3600 * 1000);

class BackupJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "backup_job_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = SqliteStore::Open(dir_ + "/state.db", clock_);
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->Put("/reactor/endpoints/web", "ini").ok());
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  BackupSettings Settings(const std::string& manager = "host1") {
    BackupSettings s;
    s.dir = dir_ + "/backups";
    s.manager = manager;
    s.keep = BackupRetention{2, 0, 0, 0};
    return s;
  }
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ + "/backups", ec)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  FakeClock clock_;
  FakeEventSink events_;
  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
};

// The agent hands the job its store wrapped (CountingStore, and on etcd a
// CachingStore): the backup must still reach the backend behind them.
TEST_F(BackupJobTest, BacksUpThroughTheWrappersTheAgentPutsAroundItsStore) {
  CounterRegistry counters;
  CountingStore counted(std::make_unique<FaultyStore>(*store_), counters);
  BackupJob job(counted, events_, clock_, Settings());
  Status st = job.RunIfDue();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(Files().size(), 1u);
  EXPECT_THAT(Files()[0], ::testing::EndsWith(".db"));
}

TEST_F(BackupJobTest, OneBackupPerHourRotatedAndRestorable) {
  BackupJob job(*store_, events_, clock_, Settings());
  ASSERT_TRUE(job.RunIfDue().ok());
  ASSERT_EQ(Files().size(), 1u);
  EXPECT_EQ(events_.Count("backup"), 1);
  ASSERT_TRUE(job.RunIfDue().ok());  // same hour: nothing
  EXPECT_EQ(Files().size(), 1u);
  for (int h = 0; h < 4; ++h) {
    clock_.Advance(kHour);
    ASSERT_TRUE(job.RunIfDue().ok());
  }
  // Two hours kept.
  auto files = Files();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_THAT(events_.Events().back().message, HasSubstr("rotation removed 1"));
  EXPECT_FALSE(store_->Get(kBackupRunningKey)->has_value());
  // The newest restores into an empty store.
  auto target = SqliteStore::Open(":memory:", clock_);
  ASSERT_TRUE(target.ok());
  auto restored = RestoreBackup(dir_ + "/backups/" + files.back(), **target, false);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ((*target)->Get("/reactor/endpoints/web")->value().value, "ini");
}

TEST_F(BackupJobTest, TwoAgentsOnOneStoreTakeOneBackupPerHour) {
  BackupSettings a = Settings("host1"), b = Settings("host2");
  BackupJob job_a(*store_, events_, clock_, a);
  BackupJob job_b(*store_, events_, clock_, b);
  ASSERT_TRUE(job_a.RunIfDue().ok());
  ASSERT_TRUE(job_b.RunIfDue().ok());
  EXPECT_EQ(Files().size(), 1u);
  clock_.Advance(kHour);
  ASSERT_TRUE(job_b.RunIfDue().ok());
  ASSERT_TRUE(job_a.RunIfDue().ok());
  EXPECT_EQ(Files().size(), 2u);
  EXPECT_EQ(events_.Count("backup"), 2);
}

TEST_F(BackupJobTest, JobHeldByAnotherAgentIsAConflictAndItsLeaseReleasesIt) {
  auto lease = store_->GrantLease(Duration(10000));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store_->Put(kBackupRunningKey, "host2", *lease).ok());
  BackupJob job(*store_, events_, clock_, Settings());
  auto r = job.TakeNow();
  EXPECT_TRUE(r.status().IsConflict()) << r.status().ToString();
  ASSERT_TRUE(job.RunIfDue().ok());
  EXPECT_TRUE(Files().empty());
  // host2 died: its lease expires, and the hour is taken over.
  clock_.Advance(Duration(130000));
  ASSERT_TRUE(job.RunIfDue().ok());
  EXPECT_EQ(Files().size(), 1u);
}

TEST_F(BackupJobTest, FailedBackupIsInTheEventLogAndLeavesPreviousBackups) {
  BackupJob job(*store_, events_, clock_, Settings());
  ASSERT_TRUE(job.RunIfDue().ok());
  const auto before = Files();
  ASSERT_EQ(before.size(), 1u);
  // The backup dir becomes unwritable (a read-only directory does not stop
  // root, so replace it with a file-backed impossibility: a file where the
  // backup would go is a directory).
  clock_.Advance(kHour);
  const std::string next = dir_ + "/backups/" + BackupFileName(clock_.WallMillis(), ".db");
  fs::create_directories(next + "/blocker");
  Status st = job.RunIfDue();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(events_.Count("backup-failed"), 1);
  EXPECT_THAT(events_.Events().back().message, HasSubstr("previous backups kept"));
  auto after = Files();
  EXPECT_EQ(std::count(after.begin(), after.end(), before[0]), 1);
  for (const auto& f : after) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
  EXPECT_FALSE(store_->Get(kBackupRunningKey)->has_value());
  // Retried after retry_after, not every round.
  EXPECT_TRUE(job.RunIfDue().ok());
  EXPECT_EQ(events_.Count("backup-failed"), 1);
}

TEST_F(BackupJobTest, TakeNowWithBackupsOffSaysHowToTurnThemOn) {
  BackupSettings off = Settings();
  off.dir.clear();
  BackupJob job(*store_, events_, clock_, off);
  auto r = job.TakeNow();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_THAT(r.status().message(), HasSubstr("backup_dir"));
  EXPECT_TRUE(job.RunIfDue().ok());
}

}  // namespace
}  // namespace reactor
