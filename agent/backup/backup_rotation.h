// Which state backups to keep ([agent] backup_*_to_keep): grandfather-father-
// son rotation as cluster operators expect. Pure and clock-driven: the
// caller passes the files and the time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace reactor {

struct BackupRetention {
  int hours = 24;  // the newest backup of each of the last `hours` hours
  int days = 14;   // ... of each of the last `days` days (UTC)
  int weeks = 4;   // ... of each of the last `weeks` weeks (Monday to Sunday, UTC)
  int months = 3;  // ... of each of the last `months` calendar months (UTC)
};

struct BackupFile {
  std::string name;     // file name in the backup dir
  int64_t time_ms = 0;  // when it was taken (wall clock, from its name)
};

/// "state-20261203T100000Z.db": the name of a backup taken at `time_ms`
/// with extension `ext` (".db" or ".snapshot").
std::string BackupFileName(int64_t time_ms, const std::string& ext);
/// The time in a name BackupFileName made, or nullopt for any other name
/// (such files are never touched).
std::optional<int64_t> ParseBackupFileName(const std::string& name);

/// The names among `files` to delete at `now_ms`: every backup that is not
/// the newest of its hour, day, week or month within the retention windows
/// ending now. The newest backup overall is always kept. Backups from the
/// future (a clock step) are kept.
std::vector<std::string> BackupsToDelete(const std::vector<BackupFile>& files, int64_t now_ms,
                                         const BackupRetention& keep);

}  // namespace reactor
