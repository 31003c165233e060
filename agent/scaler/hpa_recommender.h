// A model of the Kubernetes HorizontalPodAutoscaler with its default
// behaviour, behind `[scaling] policy = hpa` (rules_policy.h): an anchor to
// measure the lean policy against with `reactor simulate`, and a choice for
// an operator who wants the HPA's behaviour from reactor.
//
// The defaults, from the Kubernetes documentation ("Horizontal Pod
// Autoscaling", https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/,
// sections "Algorithm details" and "Configurable scaling behavior / Default
// Behavior"):
//   - the controller runs every 15 s (--horizontal-pod-autoscaler-sync-period);
//   - desired = ceil(current × currentMetric / target), skipped while the
//     ratio is within a tolerance of 0.1 of 1.0;
//   - pods without a metric yet (here: instances still starting) count as
//     using 0 % of the target for a scale-up and 100 % for a scale-down,
//     and no change is made if that reverses the direction or falls within
//     the tolerance;
//   - several metrics: the largest desired count; a metric without a value
//     forbids a scale-down;
//   - scaleUp: no stabilisation; at most the larger of 4 pods and 100 % of
//     the replicas per 15 s;
//   - scaleDown: the highest recommendation of the last 300 s; 100 % of the
//     replicas per 15 s (straight to what stabilisation allows).
//
// Rules become HPA targets: a rule with an upper bound targets the middle of
// its range (`5 < rate < 20` → 12.5/instance; `rate < 20` → 10). The middle,
// not the upper bound, because the HPA aims *at* its target and tolerates
// 10 % either side: with the upper bound as target it would settle with
// every instance at the limit, the tolerance band half outside the rule. A
// rule with only a lower bound gives no target (the HPA has no "at least"
// metric) and `instances` rules bound the count, like min/maxReplicas.
//
// Pure logic, clock passed in; not thread-safe (one per endpoint, one thread).
#pragma once

#include <deque>
#include <optional>
#include <utility>

#include "agent/common/clock.h"
#include "rules/rules.h"

namespace reactor {

/// The HPA's defaults (see above).
struct HpaDefaults {
  static constexpr Duration kSyncPeriod{15000};
  static constexpr double kTolerance = 0.1;
  static constexpr Duration kScaleDownStabilisation{300000};
  static constexpr Duration kRatePeriod{15000};  // scaleUp / scaleDown policies' periodSeconds
  static constexpr long kScaleUpPods = 4;        // scaleUp: + 4 pods per period ...
  static constexpr long kScaleUpPercent = 100;   // ... or + 100 %, whichever is more (selectPolicy Max)
};

/// One metric's desired count by the HPA's formula (Algorithm details).
/// `total` is the endpoint's total of the metric (per-instance value ×
/// instances reporting), `ready` the instances reporting it, `current` all
/// instances (ready + starting; the starting ones report nothing yet).
/// Returns `current` within the tolerance. REQUIRES: target > 0, ready >= 1,
/// current >= ready.
long HpaDesiredForMetric(long current, long ready, double total, double target);

/// The HPA target a rule gives: the middle of its range (a missing lower
/// bound is 0), nullopt for a rule without an upper bound or on `instances`.
std::optional<double> HpaTarget(const rules::Rule& rule);

/// The HPA controller's state for one endpoint: its sync period, its
/// recommendations for stabilisation and its scale-up events for the rate limit.
class HpaRecommender {
 public:
  struct Result {
    long replicas = 0;     // the count to run (what the HPA last wrote to the scale target)
    long recommended = 0;  // the raw recommendation of the last sync
    bool synced = false;   // this call was a sync (the controller ran)
    bool held = false;     // stabilisation kept replicas above the recommendation
    bool rate_limited = false;
  };
  /// Called every round. At a sync (the first call, then every kSyncPeriod)
  /// applies `desired` (the largest of the metrics' HpaDesiredForMetric,
  /// or `current` when nothing can be measured) through stabilisation and
  /// the rate limits and clamps it to [min, max]; between syncs returns the
  /// last sync's count. `allow_down` false (a metric had no value): no scale-down.
  Result Next(TimePoint now, long current, long desired, bool allow_down, long min, long max);

 private:
  std::optional<TimePoint> last_sync_;
  long replicas_ = 0;
  long recommended_ = 0;
  bool held_ = false;
  std::deque<std::pair<TimePoint, long>> recommendations_;  // raw, oldest first
  std::deque<std::pair<TimePoint, long>> scale_ups_;        // replicas added, oldest first
};

}  // namespace reactor
