#include "agent/backup/backup_job.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "agent/store/store_backup.h"

namespace reactor {
namespace {

namespace fs = std::filesystem;

std::string Padded(int64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(n));
  return buf;
}

int64_t ParsePeriod(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (...) {
    return -1;
  }
}

Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("backup_dir " + dir, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("backup_dir " + dir, std::string("fsync: ") + std::strerror(err));
  return Status::Ok();
}

}  // namespace

BackupSettings BackupSettingsFor(const AgentConfig& config) {
  BackupSettings s;
  s.dir = config.backup_dir;
  s.keep.hours = config.backup_hours_to_keep;
  s.keep.days = config.backup_days_to_keep;
  s.keep.weeks = config.backup_weeks_to_keep;
  s.keep.months = config.backup_months_to_keep;
  s.manager = config.name;
  return s;
}

BackupJob::BackupJob(Store& store, EventSink& events, Clock& clock, BackupSettings settings)
    : store_(store), events_(events), clock_(clock), settings_(std::move(settings)) {}

Status BackupJob::RunIfDue() {
  if (!enabled()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (clock_.Now() < next_check_) return Status::Ok();
  const int64_t period_ms = settings_.period.count();
  const int64_t wall = clock_.WallMillis();
  const int64_t period = wall / period_ms;
  const Duration until_next(period_ms - wall % period_ms);
  auto last = store_.Get(kBackupLastKey);
  if (!last.ok()) return last.status();
  if (last->has_value() && ParsePeriod((*last)->value) >= period) {
    next_check_ = clock_.Now() + until_next;  // someone took this period's
    return Status::Ok();
  }
  auto path = Take(period, /*forced=*/false);
  if (path.ok() || path.status().IsConflict()) {
    // Done, by us or by the agent that holds the job: look again next period
    // (a taker that dies releases the key with its lease; the next agent to
    // look takes the period over).
    next_check_ = clock_.Now() + (path.ok() ? until_next : std::min(until_next, settings_.lease_ttl));
    return Status::Ok();
  }
  next_check_ = clock_.Now() + settings_.retry_after;
  return path.status();
}

Result<std::string> BackupJob::TakeNow() {
  if (!enabled()) return Status::InvalidArgument("backups are off: set [agent] backup_dir in agent.conf");
  std::lock_guard<std::mutex> lock(mu_);
  return Take(clock_.WallMillis() / settings_.period.count(), /*forced=*/true);
}

Result<std::string> BackupJob::Take(int64_t period, bool forced) {
  auto lease = store_.GrantLease(settings_.lease_ttl);
  if (!lease.ok()) return lease.status();
  auto release = [&] { (void)store_.RevokeLease(*lease); };
  auto last = store_.Get(kBackupLastKey);
  if (!last.ok()) {
    release();
    return last.status();
  }
  const int64_t last_period = last->has_value() ? ParsePeriod((*last)->value) : -1;
  if (!forced && last_period >= period) {
    release();
    return Status::Conflict("the backup of this period was taken already");
  }
  Txn claim;
  claim.compares = {Compare::Absent(kBackupRunningKey),
                    Compare::ModRevisionIs(kBackupLastKey, last->has_value() ? (*last)->mod_revision : 0)};
  claim.success = {Op::Put(kBackupRunningKey, settings_.manager, *lease)};
  auto claimed = store_.Commit(claim);
  if (!claimed.ok() || !claimed->succeeded) {
    release();
    if (!claimed.ok()) return claimed.status();
    return Status::Conflict("another agent is taking a backup");
  }
  auto path = WriteAndRotate();
  Txn done;
  if (path.ok()) done.success.push_back(Op::Put(kBackupLastKey, Padded(std::max(period, last_period))));
  done.success.push_back(Op::Delete(kBackupRunningKey));
  (void)store_.Commit(done);
  release();
  if (!path.ok()) {
    events_.Record("", "backup-failed",
                   "backup into " + settings_.dir + " failed, previous backups kept: " + path.status().message());
    return path.status();
  }
  return path;
}

Result<std::string> BackupJob::WriteAndRotate() {
  std::error_code ec;
  fs::create_directories(settings_.dir, ec);
  if (ec) return Status::IOError("backup_dir " + settings_.dir, ec.message());
  const int64_t now = clock_.WallMillis();
  const std::string name = BackupFileName(now, BackupFileExtension(store_));
  const std::string final_path = settings_.dir + "/" + name;
  const std::string tmp = settings_.dir + "/." + name + ".tmp";
  Status st = WriteStoreBackup(store_, tmp);
  if (st.ok() && ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    st = Status::IOError("backup " + final_path, std::string("rename: ") + std::strerror(errno));
  }
  if (!st.ok()) {
    fs::remove(tmp, ec);
    return st;
  }
  REACTOR_RETURN_IF_ERROR(FsyncDir(settings_.dir));
  const auto size = fs::file_size(final_path, ec);

  std::vector<BackupFile> files;
  for (const auto& entry : fs::directory_iterator(settings_.dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (auto t = ParseBackupFileName(n)) files.push_back({n, *t});
  }
  std::vector<std::string> removed;
  for (const std::string& old : BackupsToDelete(files, now, settings_.keep)) {
    if (fs::remove(settings_.dir + "/" + old, ec)) removed.push_back(old);
  }
  std::string msg = "backup " + final_path + " written (" + std::to_string(size) + " bytes) by " + settings_.manager;
  if (!removed.empty()) msg += "; rotation removed " + std::to_string(removed.size()) + " older backups";
  events_.Record("", "backup", msg);
  return final_path;
}

}  // namespace reactor
