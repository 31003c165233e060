// The static driver: an endpoint's `static_instances` are fixed addresses that
// something else runs. They are health-checked like any instance but never
// launched or stopped by the agent.
#pragma once

#include <string>
#include <vector>

#include "agent/cloud/cloud.h"

namespace reactor {

/// The instance id of a static address: "static-" + the host with every
/// character outside [a-z0-9] (after lowering) replaced by '-', + "-" + port,
/// e.g. "127.0.0.1:8080" → "static-127-0-0-1-8080". Stable across restarts
/// and across the order of the list.
std::string StaticInstanceId(const HostPort& address);

/// One running=true InstanceInfo per distinct address in
/// `endpoint.static_instances`, in the configured order; a repeated address
/// appears once. Should two different addresses map to the same id (e.g.
/// "a.b" and "a-b"), each of them gets a suffix from a hash of its exact
/// address, so ids stay unique within the endpoint.
std::vector<InstanceInfo> StaticInstances(const EndpointConfig& endpoint);

/// The static driver runs nothing: an endpoint's static addresses come from
/// its config (StaticInstances above), and the reconciler keeps their
/// records. Thread-safe (stateless).
class StaticCloud : public Cloud {
 public:
  const char* Name() const override { return "static"; }

  /// Always InvalidArgument: static endpoints are not launched.
  Result<InstanceInfo> Launch(const LaunchRequest& req) override;
  /// Always OK and does nothing: the agent does not own static instances.
  Status Stop(const std::string& instance_id, Duration grace) override;
  /// Always empty: nothing static runs on this host.
  Result<std::vector<InstanceInfo>> List(const std::string& manager) override;
  /// Always NotFound.
  Result<InstanceInfo> Inspect(const std::string& instance_id) override;
};

}  // namespace reactor
