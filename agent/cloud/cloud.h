// A Cloud runs an endpoint's instances on this host: launch, stop, list,
// inspect. Drivers: process (process_cloud.h), docker (later), static
// (static_cloud.h). The scaler decides; a Cloud only acts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"

namespace reactor {

struct LaunchRequest {
  std::string instance_id;                   // unique, [a-z0-9-]; chosen by the caller
  std::string manager;                       // this manager's name (labels, adoption)
  const EndpointConfig* endpoint = nullptr;  // REQUIRES: non-null for the call
};

struct InstanceInfo {
  std::string instance_id;
  std::string endpoint;
  std::string address;  // "127.0.0.1:30001": where nginx reaches it
  bool running = false;
  /// Still being prepared (image pull, container create): neither running nor
  /// failed. The address may be empty until it is known.
  bool pending = false;
  int exit_code = -1;  // when !running and known
  std::string detail;  // pid, container id, or why it stopped
};

class Cloud {
 public:
  virtual ~Cloud() = default;
  virtual const char* Name() const = 0;
  /// Starts an instance; returns once it is started (not yet healthy), or —
  /// for drivers with slow preparation (docker pulls) — at once with
  /// pending=true, the rest happening in the background (List shows progress).
  virtual Result<InstanceInfo> Launch(const LaunchRequest& req) = 0;
  /// Stops and removes the instance: SIGTERM/stop, then kill after `grace`.
  /// OK if it is already gone.
  virtual Status Stop(const std::string& instance_id, Duration grace) = 0;
  /// Every instance this driver runs for `manager`, including ones started by
  /// an earlier run of the agent (adoption). Exited ones have running=false.
  virtual Result<std::vector<InstanceInfo>> List(const std::string& manager) = 0;
  virtual Result<InstanceInfo> Inspect(const std::string& instance_id) = 0;
};

}  // namespace reactor
