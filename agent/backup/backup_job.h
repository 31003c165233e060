// Rotating state backups ([agent] backup_dir, backup_*_to_keep): one backup
// per hour for the whole cluster, taken by exactly one agent, then rotated.
//
// Election: the job key kBackupRunningKey is created (compare: absent) under
// a lease of the agent that takes the backup, together with a compare on
// kBackupLastKey, which records the last hour a backup was taken for; so
// two agents never take the same hour's backup, and if the taker dies
// mid-backup its lease expires and another agent takes the hour over.
//
// Files are written under a temporary name in backup_dir, fsynced, renamed
// into place and the directory fsynced; a failed backup removes its
// temporary file, leaves the previous backups untouched, is recorded in the
// agent's event log with its reason, and is tried again after
// `retry_after`.
//
// Thread-safety: RunIfDue and TakeNow may be called from different threads
// (the loop and the API); they are serialised.
#pragma once

#include <mutex>
#include <string>

#include "agent/backup/backup_rotation.h"
#include "agent/common/agent_config.h"
#include "agent/common/clock.h"
#include "agent/common/event_sink.h"
#include "agent/common/status.h"
#include "agent/store/store.h"

namespace reactor {

inline const std::string kBackupRunningKey = "/reactor/jobs/backup/running";
inline const std::string kBackupLastKey = "/reactor/jobs/backup/last";

struct BackupSettings {
  std::string dir;  // absolute; empty = backups off
  BackupRetention keep;
  std::string manager;  // this agent's name, in the job key and events
  Duration period{3600 * 1000};
  Duration retry_after{5 * 60 * 1000};
  Duration lease_ttl{120 * 1000};
};

/// From [agent] backup_dir, backup_*_to_keep and name.
BackupSettings BackupSettingsFor(const AgentConfig& config);

class BackupJob {
 public:
  /// `store`, `events` and `clock` must outlive the job.
  BackupJob(Store& store, EventSink& events, Clock& clock, BackupSettings settings);

  /// From the agent loop, every round: takes this period's backup if no
  /// agent has, and this one wins the job key. No store access until the
  /// next period (or retry) is due. OK when there was nothing to do.
  Status RunIfDue();

  /// `reactor backup`: a backup now, whatever the period. Conflict if
  /// another agent is taking one; the backup's path on success.
  Result<std::string> TakeNow();

  bool enabled() const { return !settings_.dir.empty(); }

 private:
  Result<std::string> Take(int64_t period, bool forced);
  Result<std::string> WriteAndRotate();

  Store& store_;
  EventSink& events_;
  Clock& clock_;
  const BackupSettings settings_;

  std::mutex mu_;
  TimePoint next_check_{};  // protected by mu_
};

}  // namespace reactor
