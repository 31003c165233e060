// The static driver: an endpoint's `static_instances` are fixed addresses that
// something else runs. They are health-checked like any instance but never
// launched or stopped by the agent.
#pragma once

#include <map>
#include <mutex>
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

/// Serves the static instances of the endpoints it is told about.
/// Thread-safe.
class StaticCloud : public Cloud {
 public:
  const char* Name() const override { return "static"; }

  /// Adds or replaces the endpoint's addresses (by endpoint name).
  void SetEndpoint(const EndpointConfig& endpoint);
  /// Forgets the endpoint; unknown names are ignored.
  void RemoveEndpoint(const std::string& endpoint_name);

  /// Always InvalidArgument: static endpoints are not launched.
  Result<InstanceInfo> Launch(const LaunchRequest& req) override;
  /// Always OK and does nothing: the agent does not own static instances.
  Status Stop(const std::string& instance_id, Duration grace) override;
  /// The instances of every known endpoint, whatever `manager` is (every
  /// host's nginx fronts a static address). Ordered by endpoint name.
  Result<std::vector<InstanceInfo>> List(const std::string& manager) override;
  /// The first known instance with this id (ids are unique within an
  /// endpoint), or NotFound.
  Result<InstanceInfo> Inspect(const std::string& instance_id) override;

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<InstanceInfo>> endpoints_;  // GUARDED_BY(mu_)
};

}  // namespace reactor
