// The process driver: each instance is a local process, started without a
// shell in its own session (so it outlives the agent and is signalled as a
// group), with its output appended to a log file. Every instance is recorded
// in a JSON file under `state_dir`; a ProcessCloud over the same directory —
// after an agent restart or kill -9 — adopts what is still running.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/cloud/cloud.h"
#include "agent/common/event_sink.h"
#include "agent/common/units.h"

namespace reactor {

struct ProcessCloudSettings {
  /// Where instance records live: `<state_dir>/<instance_id>.json`.
  /// Created on first launch.
  std::string state_dir;
  /// Instance output goes to `<log_dir>/<endpoint>/<instance_id>.log`
  /// (appended, stdout and stderr together).
  std::string log_dir;
  /// Ports handed out in $PORT.
  PortRange port_range{30000, 39999};
  /// The host's `[agent] address`: handed out in $ADDRESS, and the address
  /// instances are advertised at (other hosts' nginx reach them there).
  std::string address = "127.0.0.1";
  /// The grace Stop uses when it is passed a negative one.
  Duration stop_grace{10000};
  /// How long Stop waits for the group to vanish after SIGKILL.
  Duration kill_wait{5000};
  /// How often Stop looks whether the group is gone.
  Duration poll_interval{20};
  /// Logs of removed instances are deleted once untouched for this long.
  Duration log_retention{24 * 3600 * 1000};
};

/// Deletes `<dir>/<id>.log` files not written for `retention` (by mtime,
/// against the wall clock `now_wall_ms`) whose id is not in `live_ids`.
/// Returns how many it deleted. Never follows links; ignores other files.
int PruneInstanceLogs(const std::string& dir, int64_t now_wall_ms, Duration retention,
                      const std::set<std::string>& live_ids);

/// The on-disk record of one instance (one JSON file).
struct ProcessRecord {
  std::string instance_id;
  std::string endpoint;
  std::string manager;
  pid_t pid = 0;                      // also the process group and session id
  unsigned long long start_time = 0;  // /proc/<pid>/stat field 22, clock ticks since boot
  int port = 0;
  std::string address;            // "<[agent] address>:<port>"
  std::vector<std::string> argv;  // after expansion; argv[0] resolved
  std::string command;            // as configured
  std::string log_file;
  int64_t started_at_ms = 0;  // wall clock
  bool exited = false;        // set once the agent saw it end
  int exit_code = -1;         // when exited and known (128+signal if killed)
  std::string exit_detail;
};

/// Thread-safe. Never runs a shell; never signals a process that is not the
/// recorded pid with the recorded start time (or its process group while
/// that leader has been seen alive).
class ProcessCloud : public Cloud {
 public:
  /// `events` and `clock` must outlive this object.
  ProcessCloud(ProcessCloudSettings settings, EventSink& events, Clock& clock);

  const char* Name() const override { return "process"; }

  /// REQUIRES: req.endpoint non-null, its cloud section has a command.
  /// InvalidArgument for a bad instance id, a command with unbalanced quotes
  /// or a program not found on PATH; Conflict if the id is already recorded;
  /// Unavailable when no port in the range is free.
  Result<InstanceInfo> Launch(const LaunchRequest& req) override;
  /// SIGTERM to the process group, SIGKILL after `grace` (negative = the
  /// settings' stop_grace), reap, forget the record. OK if already gone.
  /// Blocks for at most grace + kill_wait.
  Status Stop(const std::string& instance_id, Duration grace) override;
  /// Every recorded instance of `manager`, running or not. Reaps children of
  /// this process that have exited and records how they ended.
  Result<std::vector<InstanceInfo>> List(const std::string& manager) override;
  /// NotFound when there is no record.
  Result<InstanceInfo> Inspect(const std::string& instance_id) override;

  /// The record of an instance, or NotFound / IOError.
  Result<ProcessRecord> ReadRecord(const std::string& instance_id) const;

 private:
  std::string RecordPath(const std::string& instance_id) const;
  Status WriteRecord(const ProcessRecord& record) const;
  Result<std::vector<ProcessRecord>> ReadAllRecords() const;
  /// Brings record.exited up to date (reaping our own child, checking /proc
  /// for adopted ones) and persists a change. REQUIRES: mu_ held.
  void Refresh(ProcessRecord& record);
  InstanceInfo ToInfo(const ProcessRecord& record) const;
  /// REQUIRES: mu_ held.
  Result<int> PickPort(const std::vector<ProcessRecord>& records);

  // Constant after construction.
  const ProcessCloudSettings settings_;
  EventSink& events_;
  Clock& clock_;

  std::mutex mu_;
  int next_port_;                   // GUARDED_BY(mu_): the rotating scan cursor
  std::set<std::string> known_;     // GUARDED_BY(mu_): ids launched or already adopted here
  std::set<std::string> stopping_;  // GUARDED_BY(mu_): ids inside Stop; Refresh leaves them alone
};

}  // namespace reactor
