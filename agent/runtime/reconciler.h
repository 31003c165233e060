// One round of the agent loop: bring what runs (clouds), what is checked
// (health) and what nginx serves in line with what the store says should be.
//
// Decides per endpoint how many instances it should have (DesiredCount), and
// walks each instance through its lifecycle (instance_record.h), recording
// every transition in the endpoint's event log with its reason.
//
// Thread model: RunOnce is called by the agent's loop thread only; GetStatus and
// AllStatus may be called from any thread (API handlers).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/cloud/cloud.h"
#include "agent/cluster/host_membership.h"
#include "agent/common/clock.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/health/health_checker.h"
#include "agent/instances/instance_record.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/scaler/scaling_policy.h"
#include "agent/store/store.h"

namespace reactor {

/// What `reactor status` shows of an endpoint.
struct EndpointStatus {
  std::string name;
  std::string state;
  int instances = 0;  // starting + active
  int healthy = 0;    // active
  int draining = 0;
  int target = 0;
  std::optional<long> range_min;  // nullopt range = the rules contradict
  std::optional<long> range_max;  // nullopt = unbounded
  bool has_range = true;
  std::string last_decision;
  std::string problem;  // e.g. "no free slots", "launch backing off: ..."
};

/// Holds the count inside [min_instances, max_instances] (no rules applied).
class MinMaxPolicy : public ScalingPolicy {
 public:
  Decision Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>& active_addresses) override;
};

struct ReconcilerOptions {
  std::string manager;        // this host's name
  int slots = 1000;           // this host's scheduling slots
  Duration start_timeout{60000};  // a starting instance must pass its health check within this
  Duration stop_grace{5000};      // SIGTERM → SIGKILL
  Duration min_drain{1000};       // draining lasts at least this (nginx workers see the change)
  /// This host's cluster membership: the round's slot and instance counts
  /// go to its record. May be null (tests).
  HostMembership* membership = nullptr;
  /// Called (loop thread) once an unmanaged endpoint is gone, to drop what
  /// other parts keep for it (custom metrics). May be empty.
  std::function<void(const std::string& endpoint)> on_endpoint_removed;
};

class Reconciler {
 public:
  /// Every reference must outlive the Reconciler. `clouds` maps cloud kind to
  /// driver (kStatic included). `active_connections(address)` counts open
  /// connections to an instance (from /proc/net/tcp in production).
  Reconciler(ReconcilerOptions options, Store& store, EventLog& events, NginxController& nginx,
             HealthSource& health, std::map<CloudKind, Cloud*> clouds, ScalingPolicy& policy, Clock& clock,
             std::function<int(const std::string&)> active_connections);
  ~Reconciler();

  /// One round. Errors of one endpoint are recorded and do not stop the others.
  Status RunOnce();

  std::optional<EndpointStatus> GetStatus(const std::string& name) const;
  std::vector<EndpointStatus> AllStatus() const;

 private:
  struct Backoff {
    int failures = 0;
    TimePoint next_try{};
    std::string last_error;
  };
  struct EndpointRound;

  void ReconcileEndpoint(EndpointRound& round);
  void ReconcileStatic(EndpointRound& round);
  void CheckInstances(EndpointRound& round);
  void Scale(EndpointRound& round);
  /// Both return how many instances they launched or put to draining.
  int Launch(EndpointRound& round, int count);
  int Drain(EndpointRound& round, int count, const std::string& why);
  void FinishDraining(EndpointRound& round);
  void NoteStartFailure(const std::string& endpoint, const std::string& why);
  void Transition(InstanceRecord& r, InstanceState to, const std::string& reason);
  void Retire(InstanceRecord& r, const std::string& why);
  void StopAsync(Cloud* cloud, const std::string& id);
  void StopStrays(const std::set<std::string>& known_ids);
  void PushNginx(const std::vector<EndpointRecord>& endpoints);
  void PublishManager(int instances);
  std::string NewInstanceId(const std::string& endpoint);

  const ReconcilerOptions options_;
  Store& store_;
  EventLog& events_;
  NginxController& nginx_;
  HealthSource& health_;
  std::map<CloudKind, Cloud*> clouds_;
  ScalingPolicy& policy_;
  Clock& clock_;
  std::function<int(const std::string&)> active_connections_;
  EndpointRegistry registry_;
  InstanceTable instances_;

  // Loop-thread state.
  std::map<std::string, Backoff> backoff_;
  std::map<std::string, std::vector<Member>> pushed_members_;
  std::map<std::string, std::string> last_decision_;
  std::map<std::string, std::map<std::string, InstanceInfo>> cloud_view_;  // cloud name → id → info
  std::map<std::string, HealthReport> health_view_;
  std::set<std::string> held_;  // endpoints whose last decision held a scale-down
  std::set<std::string> waiting_for_slots_;  // endpoints told "no free slots" (said once)
  std::map<std::string, std::string> cloud_errors_;  // cloud name → last List error reported
  std::set<std::string> retired_;  // instances retired this round (their stop is queued)
  std::map<std::string, int64_t> drain_seen_ms_;  // draining instance → wall ms of the first round that saw it
  std::map<std::string, std::string> invalid_reported_;  // endpoint → the problem said in its log
  std::set<std::string> unreadable_reported_;            // instance ids whose unreadable record was said
  bool cordoned_ = false;  // this host takes no new placements (read each round)
  int slots_used_ = 0;
  uint64_t id_counter_ = 0;

  // Instances are stopped by a worker thread so that a slow SIGTERM→SIGKILL
  // never holds up the loop. State below is protected by stop_mu_.
  void StopWorker();
  mutable std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::vector<std::pair<Cloud*, std::string>> stop_queue_;
  std::set<std::string> stopping_;  // queued or being stopped
  bool stop_worker_exit_ = false;
  std::thread stop_thread_;

  mutable std::mutex status_mu_;
  std::map<std::string, EndpointStatus> status_;  // protected by status_mu_
};

}  // namespace reactor
