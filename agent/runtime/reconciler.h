// One round of the agent loop (SPEC §13): reads the endpoints, instances and
// cluster once, then runs its three parts in order —
//   the host actuator   records what happened to this host's instances;
//   the endpoint owner  decides for the endpoints this host owns (election:
//                       agent/cluster/owner_election.h), fenced;
//   the host actuator   launches what was assigned here, finishes drains and
//                       stops what is no longer assigned here;
//   the nginx sync      serves every endpoint with every active instance.
// On SQLite the same parts run in one process: a single host is a cluster of
// one. Every instance transition is recorded in its endpoint's event log
// with its reason.
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
#include "agent/cluster/owner_election.h"
#include "agent/common/clock.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/health/health_checker.h"
#include "agent/instances/instance_record.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/runtime/endpoint_owner.h"
#include "agent/runtime/host_actuator.h"
#include "agent/runtime/nginx_sync.h"
#include "agent/runtime/round.h"
#include "agent/scaler/scaling_policy.h"
#include "agent/store/store.h"

namespace reactor {

/// Holds the count inside [min_instances, max_instances] (no rules applied).
class MinMaxPolicy : public ScalingPolicy {
 public:
  Decision Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>& active_addresses) override;
};

struct ReconcilerOptions {
  std::string manager;            // this host's name
  int slots = 1000;               // this host's scheduling slots
  Duration start_timeout{60000};  // a starting instance must pass its health check within this
  Duration stop_grace{5000};      // SIGTERM → SIGKILL
  Duration min_drain{1000};       // draining lasts at least this (nginx workers see the change)
  /// This host's cluster membership: its lease holds the owner keys, and
  /// the round's slot and instance counts go to its record. May be null
  /// (tests: one host, owner keys without a lease).
  HostMembership* membership = nullptr;
  Duration lease_ttl{5000};
  /// A new owner's wait before scale-down and retirement (a lease TTL plus
  /// etcd's election timeout in a cluster); 0 = none.
  Duration takeover_wait{0};
  /// Called (loop thread) once an unmanaged endpoint is gone, to drop what
  /// other parts keep for it (custom metrics). May be empty.
  std::function<void(const std::string& endpoint)> on_endpoint_removed;
};

class Reconciler {
 public:
  /// Every reference must outlive the Reconciler. `clouds` maps cloud kind to
  /// driver (kStatic included). `active_connections(address)` counts open
  /// connections to an instance (from /proc/net/tcp in production).
  Reconciler(ReconcilerOptions options, Store& store, EventLog& events, NginxController& nginx, HealthSource& health,
             std::map<CloudKind, Cloud*> clouds, ScalingPolicy& policy, Clock& clock,
             std::function<int(const std::string&)> active_connections);
  ~Reconciler() = default;

  /// One round. Errors of one endpoint are recorded and do not stop the others.
  Status RunOnce();

  std::optional<EndpointStatus> GetStatus(const std::string& name) const;
  std::vector<EndpointStatus> AllStatus() const;

  /// Every endpoint's instance addresses as the last round left them (the
  /// traffic publisher counts their connections): read from the round, not
  /// the store again. Loop thread only; empty before the first round.
  const std::map<std::string, std::vector<std::string>>& InstanceAddresses() const { return addresses_; }

  /// The nginx sync, for route changes applied between rounds (RouteWatcher).
  NginxSync& Sites() { return nginx_sync_; }

 private:
  void Summarize(Round& round, std::map<std::string, EndpointStatus>* statuses);
  void PublishStatus(const EndpointRound& er);

  const ReconcilerOptions options_;
  Store& store_;
  EventLog& events_;
  NginxController& nginx_;
  EndpointRegistry registry_;
  InstanceTable instances_;
  OwnerElection election_;
  HostActuator actuator_;
  EndpointOwner owner_;
  NginxSync nginx_sync_;

  std::map<std::string, std::vector<std::string>> addresses_;  // loop thread: InstanceAddresses()
  std::map<std::string, std::string> published_status_;        // endpoint → status JSON this host wrote last

  mutable std::mutex status_mu_;
  std::map<std::string, EndpointStatus> status_;  // protected by status_mu_
};

}  // namespace reactor
