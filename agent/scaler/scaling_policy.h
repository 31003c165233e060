// The scaling policy's interface: how many instances an endpoint should run.
// The agent's reconciler (agent/runtime/) and `reactor simulate`
// (agent/simulate/) both drive an implementation of it; neither knows which.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/endpoint/endpoint_config.h"

namespace reactor {

/// Decides how many instances an endpoint should run, given the endpoint,
/// its current count (starting + in service) and the addresses of the
/// instances in service. Thread: whoever drives it calls it from one thread.
class ScalingPolicy {
 public:
  virtual ~ScalingPolicy() = default;
  struct Decision {
    int target = 0;
    std::optional<long> range_min;
    std::optional<long> range_max;
    bool has_range = true;
    /// True when stabilisation holds a scale-down back: target is above what
    /// the rules recommend until every recommendation in scale_down_delay agrees.
    bool held = false;
    /// Scale to zero: requests nginx holds that raised the target (0 = none).
    int held_requests = 0;
    /// Scale to zero: no request for idle_timeout; the target may be 0.
    bool idle = false;
    std::string explanation;  // empty when nothing changed
  };
  virtual Decision Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>& active_addresses) = 0;
  /// Drops what the policy remembers of `endpoint` (called after unmanage).
  virtual void Forget(const std::string& endpoint) { (void)endpoint; }
};

/// The change one round makes toward `target` from `current` live instances:
/// at most `ramp_limit` launches (> 0) or removals (< 0); 0 when they agree.
/// REQUIRES: ramp_limit >= 1.
inline int RampLimitedStep(int current, int target, int ramp_limit) {
  if (target > current) return target - current < ramp_limit ? target - current : ramp_limit;
  if (target < current) return current - target < ramp_limit ? target - current : -ramp_limit;
  return 0;
}

}  // namespace reactor
