// The rise/fall state machine of one checked instance: a pure counter that
// turns check results into explicit transitions (as Envoy's health checker
// does), so it can be tested without sockets or time.
#pragma once

#include <string>

namespace reactor {

enum class HealthState {
  kPending,    // never healthy yet: takes no traffic until `rise` successes
  kHealthy,    // in service
  kUnhealthy,  // `fall` consecutive failures after being healthy
};
const char* HealthStateName(HealthState s);

enum class HealthTransition {
  kUnchanged,      // the state stays and no threshold is being approached
  kChangePending,  // the result disagrees with the state, threshold not reached
  kChanged,        // the state flipped on this result
};

class HealthThreshold {
 public:
  /// REQUIRES: rise >= 1, fall >= 1.
  /// `initially_healthy` seeds an instance known to be in service (adopted
  /// after an agent restart) so that it can fall without rising first.
  HealthThreshold(int rise, int fall, bool initially_healthy = false)
      : rise_(rise), fall_(fall), state_(initially_healthy ? HealthState::kHealthy : HealthState::kPending) {}

  HealthTransition Record(bool success);
  HealthState state() const { return state_; }
  int consecutive_successes() const { return successes_; }
  int consecutive_failures() const { return failures_; }
  void SetThresholds(int rise, int fall) {
    rise_ = rise;
    fall_ = fall;
  }

 private:
  int rise_;
  int fall_;
  HealthState state_;
  int successes_ = 0;
  int failures_ = 0;
};

}  // namespace reactor
