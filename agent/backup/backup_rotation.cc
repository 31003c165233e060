#include "agent/backup/backup_rotation.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace reactor {
namespace {

constexpr int64_t kHourMs = 3600LL * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

int64_t HourOf(int64_t ms) { return FloorDiv(ms, kHourMs); }
int64_t DayOf(int64_t ms) { return FloorDiv(ms, kDayMs); }
// 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
int64_t WeekOf(int64_t ms) { return FloorDiv(DayOf(ms) + 3, 7); }
int64_t MonthOf(int64_t ms) {
  const time_t t = static_cast<time_t>(FloorDiv(ms, 1000));
  struct tm tm {};
  gmtime_r(&t, &tm);
  return (static_cast<int64_t>(tm.tm_year) + 1900) * 12 + tm.tm_mon;
}

}  // namespace

std::string BackupFileName(int64_t time_ms, const std::string& ext) {
  const time_t t = static_cast<time_t>(time_ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "state-%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf + ext;
}

std::optional<int64_t> ParseBackupFileName(const std::string& name) {
  int y, mo, d, h, mi, s;
  char tail[32] = {0};
  if (name.size() < 22 || name.compare(0, 6, "state-") != 0) return std::nullopt;
  if (std::sscanf(name.c_str(), "state-%4d%2d%2dT%2d%2d%2dZ%31s", &y, &mo, &d, &h, &mi, &s, tail) != 7) {
    return std::nullopt;
  }
  const std::string ext = tail;
  if (ext != ".db" && ext != ".snapshot") return std::nullopt;
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const time_t t = timegm(&tm);
  if (t < 0 || BackupFileName(static_cast<int64_t>(t) * 1000, ext) != name) return std::nullopt;
  return static_cast<int64_t>(t) * 1000;
}

std::vector<std::string> BackupsToDelete(const std::vector<BackupFile>& files, int64_t now_ms,
                                         const BackupRetention& keep) {
  std::vector<BackupFile> sorted = files;
  std::sort(sorted.begin(), sorted.end(), [](const BackupFile& a, const BackupFile& b) {
    return a.time_ms != b.time_ms ? a.time_ms > b.time_ms : a.name > b.name;
  });
  std::set<std::string> kept;
  if (!sorted.empty()) kept.insert(sorted.front().name);
  struct Window {
    int count;
    int64_t (*bucket)(int64_t);
  } const windows[] = {{keep.hours, HourOf}, {keep.days, DayOf}, {keep.weeks, WeekOf}, {keep.months, MonthOf}};
  for (const Window& w : windows) {
    if (w.count <= 0) continue;
    const int64_t current = w.bucket(now_ms);
    std::set<int64_t> seen;
    for (const BackupFile& f : sorted) {  // newest first: the first of a bucket is its newest
      const int64_t b = w.bucket(f.time_ms);
      if (b > current) {
        kept.insert(f.name);  // from the future: not ours to judge
        continue;
      }
      if (b <= current - w.count) continue;
      if (seen.insert(b).second) kept.insert(f.name);
    }
  }
  std::vector<std::string> out;
  for (const BackupFile& f : sorted) {
    if (!kept.count(f.name)) out.push_back(f.name);
  }
  return out;
}

}  // namespace reactor
