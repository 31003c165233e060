#include "agent/health/health_threshold.h"

namespace reactor {

const char* HealthStateName(HealthState s) {
  switch (s) {
    case HealthState::kPending: return "pending";
    case HealthState::kHealthy: return "healthy";
    case HealthState::kUnhealthy: return "unhealthy";
  }
  return "pending";
}

HealthTransition HealthThreshold::Record(bool success) {
  if (success) {
    ++successes_;
    failures_ = 0;
    if (state_ == HealthState::kHealthy) return HealthTransition::kUnchanged;
    if (successes_ >= rise_) {
      state_ = HealthState::kHealthy;
      return HealthTransition::kChanged;
    }
    return HealthTransition::kChangePending;
  }
  ++failures_;
  successes_ = 0;
  if (state_ != HealthState::kHealthy) return HealthTransition::kUnchanged;
  if (failures_ >= fall_) {
    state_ = HealthState::kUnhealthy;
    return HealthTransition::kChanged;
  }
  return HealthTransition::kChangePending;
}

}  // namespace reactor
