// `reactor simulate`'s engine: replays a load trace against the agent's own
// scaling policy (RulesPolicy, with its stabilisation and clamp, and the
// reconciler's ramp limit, RampLimitedStep) on a simulated clock, and scores
// what it did against an oracle.
//
// The model (also in `reactor simulate --help` and the README):
// - Time moves in rounds of one second. In second s the trace's load L(s)
//   is offered; at its end (the round) the policy decides and at most
//   ramp_limit instances are launched or removed.
// - An instance serves from start_delay after its launch until its removal,
//   and costs from launch to removal (a removed instance stops at once: the
//   model has no drain). Removal takes starting instances first (oldest
//   first), then the newest serving ones, as the reconciler does.
// - Each serving instance handles up to `capacity` requests/s; the load
//   splits evenly over the serving instances, so the per-instance `rate` the
//   rules see is L / serving (model_metrics.h has every metric).
// - response: ρ = L / (serving × capacity); response = base / (1 − ρ) (the
//   M/M/1 mean sojourn time), capped at 20 × base (reached at ρ = 0.95,
//   and whenever ρ >= 0.95). With no serving instance no request is served
//   (no response time, as in nginx's log).
// - An overload second is one with L > 0 and L / serving >= capacity (or no
//   serving instance).
// - The oracle runs ⌈L / capacity⌉ instances, clamped to [min, max], in every
//   second, with no start delay.
// - The run starts with `initial` serving instances (default: the oracle's
//   count for second 0), as an endpoint that already serves the traffic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"
#include "agent/simulate/trace.h"

namespace reactor {

struct SimulationOptions {
  double capacity = 20;         // requests/s one instance serves
  Duration start_delay{2000};   // launch → serving
  double base_response = 0.05;  // s: response time of an idle instance
  std::optional<int> initial;   // serving instances at second 0 (default: the oracle's)
};

/// One second of the timeline.
struct SimulatedSecond {
  int64_t second = 0;
  double load = 0;    // requests offered
  int instances = 0;  // live during the second (starting + serving): what it costs
  int serving = 0;
  double capacity = 0;             // serving × capacity
  double rate = 0;                 // load / serving (load when none serves)
  std::optional<double> response;  // modelled mean response time, s
  bool overload = false;
  int oracle = 0;
  int target = 0;    // the policy's target at the end of the second
  int launched = 0;  // at the end of the second
  int removed = 0;
  bool held = false;  // the scale-down was held by stabilisation
};

struct SimulationSummary {
  int64_t seconds = 0;
  int64_t overload_seconds = 0;
  double instance_seconds = 0;
  double oracle_instance_seconds = 0;
  double cost_ratio = 0;  // instance_seconds / oracle_instance_seconds (0 when the oracle costs 0)
  int scale_ups = 0;      // rounds that launched
  int scale_downs = 0;    // rounds that removed
  int max_instances = 0;
  double OverloadPercent() const { return seconds ? 100.0 * overload_seconds / seconds : 0; }
};

struct SimulationResult {
  SimulationSummary summary;
  std::vector<SimulatedSecond> timeline;
  /// Metrics the rules name that the model does not provide (those rules are skipped).
  std::vector<std::string> unmodelled_metrics;
};

/// Runs `cfg.scaling` (rules, policy, min/max, window, scale_down_delay,
/// ramp_limit, ...) on `trace`. InvalidArgument for options out of range
/// (capacity <= 0, negative delay or base, rules that do not parse, an
/// initial count outside [min, max]). Deterministic; never throws.
Result<SimulationResult> Simulate(const Trace& trace, const EndpointConfig& cfg, const SimulationOptions& options);

}  // namespace reactor
