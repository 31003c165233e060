// Scale to zero (SPEC §4 idle_timeout, §7 holds): the pure parts of the
// decision. RulesPolicy (rules_policy.h) applies them:
//   - with min_instances = 0, an endpoint with instances keeps at least one
//     until no request has been seen for idle_timeout (and the rules' range
//     includes 0); then it drains to zero, without waiting for
//     scale_down_delay (idle_timeout is that stabilisation);
//   - at zero (or with no instance in service yet), requests held by nginx
//     are demand: the target is at least 1, and more for a burst, as the
//     rules size it (WakeTarget).
#pragma once

#include "rules/rules.h"

namespace reactor {

/// The instance count `held` requests, held for `held_for_s` seconds, call
/// for: the rules evaluated as if one instance carried them all (rate =
/// held / max(1 s, held_for_s) requests/s, active = held connections),
/// clamped into [max(1, min_instances), max_instances]. 0 when
/// max_instances < 1 (the endpoint cannot scale) or held <= 0.
long WakeTarget(const rules::RuleSet& set, int held, double held_for_s, long min_instances, long max_instances);

/// What `status` says of an endpoint with min_instances = 0 (else ""):
/// "scaled to zero" when running with no instance and target 0, "waking"
/// when running with none healthy and target >= 1.
const char* ZeroPhase(int min_instances, bool running, int instances, int healthy, int target);

}  // namespace reactor
