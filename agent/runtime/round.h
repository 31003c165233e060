// One round of the agent loop, shared by its three parts (SPEC §13): the
// host actuator (runs this host's instances), the endpoint owner (decides
// for the endpoints this host owns) and the nginx sync (serves every
// endpoint with every active instance in the cluster). The round is read
// once from the store; each part writes through the store by compare-and-
// swap and updates the round in place, so the next part sees its changes.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/cluster/cluster_view.h"
#include "agent/common/clock.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/instances/instance_record.h"

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
  std::string owner;    // the manager that decides for it ("" = none yet)
};

struct EndpointRound {
  const EndpointRecord* record = nullptr;  // null for instances whose endpoint is gone
  std::string name;
  std::vector<InstanceRecord> instances;  // every host's
  EndpointStatus status;
  bool decided = false;  // this host owns it and decided this round
};

struct Round {
  std::vector<EndpointRecord> endpoints;
  int64_t endpoints_revision = 0;  // the store revision `endpoints` were read at
  std::map<std::string, EndpointRound> by_endpoint;
  ClusterView view;
  std::set<std::string> unreadable;  // ids of instance records that do not read
};

/// Sets an instance's new state (not written) and returns what its
/// endpoint's log says of it once written: "id (address) from → to: reason".
inline std::string SetState(Clock& clock, InstanceRecord& r, InstanceState to, const std::string& reason) {
  std::string from = InstanceStateName(r.state);
  r.state = to;
  r.state_since_ms = clock.WallMillis();
  r.reason = reason;
  return r.id + " (" + (r.address.empty() ? "no address" : r.address) + ") " + from + " → " + InstanceStateName(to) +
         ": " + reason;
}

/// Removes from `instances` those whose `drop` flag is set, keeping the
/// others in order, by moving (a round filters 10,000 records per part: a
/// copy of each kept one cost megabytes and milliseconds).
/// REQUIRES: drop.size() == instances.size().
inline void EraseDropped(std::vector<InstanceRecord>& instances, const std::vector<bool>& drop) {
  size_t w = 0;
  for (size_t i = 0; i < instances.size(); ++i) {
    if (drop[i]) continue;
    if (w != i) instances[w] = std::move(instances[i]);
    ++w;
  }
  instances.resize(w);
}

}  // namespace reactor
