#include "agent/backup/backup_rotation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace reactor {
namespace {

constexpr int64_t kHour = 3600LL * 1000;
constexpr int64_t kDay = 24 * kHour;
// 2026-12-03T10:30:00Z, a Thursday.
constexpr int64_t kNow = 1796293800LL * 1000;

// Hourly backups for `hours` hours before now, one at :05 past each hour,
// then the rotation applied after each, as the job does.
std::set<std::string> SimulateHourly(int hours, const BackupRetention& keep) {
  std::vector<BackupFile> files;
  for (int h = hours; h >= 0; --h) {
    const int64_t t = kNow - h * kHour - 25 * 60 * 1000;
    files.push_back({BackupFileName(t, ".db"), t});
    auto gone = BackupsToDelete(files, t, keep);
    files.erase(
        std::remove_if(files.begin(), files.end(),
                       [&](const BackupFile& f) { return std::find(gone.begin(), gone.end(), f.name) != gone.end(); }),
        files.end());
  }
  std::set<std::string> names;
  for (const auto& f : files) names.insert(f.name);
  return names;
}

TEST(BackupRotation, FileNamesRoundTripAndOthersAreIgnored) {
  EXPECT_EQ(BackupFileName(kNow, ".db"), "state-20261203T103000Z.db");
  EXPECT_EQ(ParseBackupFileName("state-20261203T103000Z.db"), kNow);
  EXPECT_EQ(ParseBackupFileName("state-20261203T103000Z.snapshot"), kNow);
  for (const char* other : {"notes.txt", "state-20261203T103000Z.db.tmp", ".state-20261203T103000Z.db.tmp",
                            "state-20261332T103000Z.db", "state-2026120T103000Z.db", "state-20261203T103000Z.exe"}) {
    EXPECT_FALSE(ParseBackupFileName(other)) << other;
  }
}

TEST(BackupRotation, KeepsTheNewestOfEachHourDayWeekAndMonthWithinTheWindows) {
  const BackupRetention keep{24, 14, 4, 3};
  // 120 days of hourly backups.
  auto kept = SimulateHourly(120 * 24, keep);
  // 24 hourly + 13 older days + a few older weeks + older months (windows
  // overlap: the newest of today is also the newest of this week and month).
  std::set<int64_t> times;
  for (const auto& n : kept) times.insert(*ParseBackupFileName(n));
  int last_24h = 0, within_14d = 0;
  for (int64_t t : times) {
    last_24h += t > kNow - 24 * kHour;
    within_14d += t > kNow - 14 * kDay;
  }
  EXPECT_EQ(last_24h, 24);
  EXPECT_GE(within_14d, 24 + 12);
  EXPECT_LE(kept.size(), static_cast<size_t>(24 + 14 + 4 + 3));
  // The oldest kept backup is from the third month back (October 2026), and
  // nothing older survives.
  const int64_t oldest = *times.begin();
  EXPECT_GE(oldest, 1790812800LL * 1000);  // 2026-10-01T00:00:00Z
  EXPECT_LT(oldest, 1793491200LL * 1000);  // 2026-11-01T00:00:00Z
  // It is the newest backup of October (its last hour).
  EXPECT_EQ(BackupFileName(oldest, ".db"), "state-20261031T230500Z.db");
}

TEST(BackupRotation, NewestIsAlwaysKeptEvenWithNothingToKeep) {
  std::vector<BackupFile> files = {{"state-20261203T090500Z.db", kNow - kHour - 25 * 60000},
                                   {"state-20261203T100500Z.db", kNow - 25 * 60000}};
  auto gone = BackupsToDelete(files, kNow, BackupRetention{0, 0, 0, 0});
  EXPECT_EQ(gone, std::vector<std::string>{"state-20261203T090500Z.db"});
}

TEST(BackupRotation, BackupsFromTheFutureAreKept) {
  std::vector<BackupFile> files = {{"state-20261204T100500Z.db", kNow + kDay},
                                   {"state-20261203T100500Z.db", kNow - 25 * 60000},
                                   {"state-20261203T101000Z.db", kNow - 20 * 60000}};
  auto gone = BackupsToDelete(files, kNow, BackupRetention{24, 14, 4, 3});
  // Two in the same hour: the older one goes; the future one stays.
  EXPECT_EQ(gone, std::vector<std::string>{"state-20261203T100500Z.db"});
}

TEST(BackupRotation, WeeksStartOnMonday) {
  // Sunday 2026-11-29 23:00 and Monday 2026-11-30 01:00 are different weeks;
  // Monday and Thursday (now) the same.
  const int64_t sunday = 1795993200LL * 1000;  // 2026-11-29T23:00:00Z
  const int64_t monday = sunday + 2 * kHour;   // 2026-11-30T01:00:00Z
  std::vector<BackupFile> files = {{BackupFileName(sunday, ".db"), sunday}, {BackupFileName(monday, ".db"), monday}};
  auto gone = BackupsToDelete(files, kNow, BackupRetention{0, 0, 2, 0});
  EXPECT_TRUE(gone.empty());  // one per week, two weeks kept
  auto one_week = BackupsToDelete(files, kNow, BackupRetention{0, 0, 1, 0});
  EXPECT_EQ(one_week, std::vector<std::string>{BackupFileName(sunday, ".db")});
}

}  // namespace
}  // namespace reactor
