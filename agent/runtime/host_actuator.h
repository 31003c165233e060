// The host actuator (SPEC §13, "the hosts act"): on every agent, starts and
// stops the instances assigned to its host on its own drivers, health-checks
// them and records what it sees (address, starting → active, → errored). It
// finishes drains (it counts the open connections, which end on its host),
// and stops whatever runs here that is no longer assigned here: after a
// partition or a restart, duplicates live at most one round.
//
// It writes only the records of its own host's instances, each by compare-
// and-swap on the record's revision; it never decides how many there are.
//
// Thread model: the loop thread calls everything; instances are stopped by
// a worker thread of its own so a slow SIGTERM→SIGKILL never holds the loop.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/cloud/cloud.h"
#include "agent/common/clock.h"
#include "agent/events/event_log.h"
#include "agent/health/health_checker.h"
#include "agent/runtime/round.h"
#include "agent/store/store.h"

namespace reactor {

class HostActuator {
 public:
  struct Options {
    std::string manager;
    Duration start_timeout{60000};
    Duration stop_grace{5000};
    Duration min_drain{1000};
  };
  /// Every reference must outlive the actuator.
  HostActuator(Options options, Store& store, EventLog& events, HealthSource& health,
               std::map<CloudKind, Cloud*> clouds, Clock& clock,
               std::function<int(const std::string&)> active_connections);
  ~HostActuator();

  /// Lists the clouds the round uses and takes the health snapshot.
  void Observe(const Round& round);
  /// Records what happened to this host's instances: exits, health passes
  /// and failures, start timeouts.
  void Check(Round& round);
  /// Launches what was assigned here, finishes drains, stops what is no
  /// longer assigned here, and sets the health targets.
  void Act(Round& round);

  /// The cloud kinds this host runs, by name ("process", "docker").
  std::vector<std::string> Drivers() const;

 private:
  bool Mine(const InstanceRecord& r) const { return r.manager == options_.manager; }
  Cloud* CloudNamed(const std::string& name) const;
  void Launch(EndpointRound& er, InstanceRecord& r);
  void FinishDraining(EndpointRound& er);
  void StopAsync(Cloud* cloud, const std::string& id);
  /// How long `r` (starting) has been starting: by its record when this
  /// process first saw it, on the monotonic clock since.
  int64_t StartingFor(const InstanceRecord& r);
  bool Stopping(const std::string& id) const;
  void StopWorker();

  const Options options_;
  Store& store_;
  EventLog& events_;
  HealthSource& health_;
  std::map<CloudKind, Cloud*> clouds_;
  Clock& clock_;
  std::function<int(const std::string&)> active_connections_;

  // Loop-thread state.
  std::map<std::string, std::map<std::string, InstanceInfo>> cloud_view_;  // cloud name → id → info
  std::map<std::string, std::string> cloud_errors_;                        // cloud name → last List error reported
  std::map<std::string, HealthReport> health_view_;
  std::set<std::string> launched_;  // ids this process launched (a List may lag behind)
  std::set<std::string> assigned_;  // ids assigned here last round
  // Timeouts run on the monotonic clock from the first round that saw the
  // state (a wall clock stepped forward would retire or stop at once):
  std::map<std::string, TimePoint> drain_seen_;  // draining instance → first round that saw it
  struct StartSeen {
    TimePoint at;        // the first round that saw it starting
    int64_t elapsed_ms;  // how long it had been starting then, by its record
  };
  std::map<std::string, StartSeen> start_seen_;  // starting instance → see StartSeen
  std::set<std::string> unreadable_reported_;

  mutable std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::vector<std::pair<Cloud*, std::string>> stop_queue_;  // protected by stop_mu_
  std::set<std::string> stopping_;                          // protected by stop_mu_
  bool stop_worker_exit_ = false;                           // protected by stop_mu_
  std::thread stop_thread_;
};

}  // namespace reactor
