// The scaling policy of SPEC.md §5: per-instance metric averages → the rule
// evaluator's ideal range → clamp to [min, max] → target, with Kubernetes
// HPA-style stabilisation: scale-up acts at once, scale-down only when every
// target computed during the last `scale_down_delay` allows it.
//
// The range is always the evaluator's (SPEC §5, `reactor rules ideal`); the
// `[scaling] policy` key chooses the target within it:
//   reactor  stay anywhere in the range; outside it, go to the nearest edge.
//            Rules see the averages over `window`.
//   lean     (default) the fewest instances in the range that keep every
//            upper metric bound with `headroom` (default 22 %) to spare:
//            scale up at once on the averages over the short
//            `scale_up_window` (the last second by default), and step down on
//            the averages over `window`, toward the cheaper edge, with a hold
//            that depends on the step: a step of 2 or more instances (a
//            burst has ended) once the counts of the last `window` (and the
//            short window's of the last 2 × `window`) agree; a step of one
//            instance (noise around a boundary) once every long-window count
//            of the last `scale_down_delay` agrees and the short window has
//            not asked for more than the new count for 10 × scale_down_delay
//            (stepping back to a count the last second found too small would
//            flip). With `predict` > 0 a rising trend (the short window's
//            mean above the long one's) is extrapolated that far ahead for
//            the scale-up.
//   midpoint Gridcentric Reactor's own target (its endpoint.py): stay
//            anywhere in the range; outside it, jump to the range's
//            midpoint; no scale-down stabilisation (Reactor had none).
//   hpa      the Kubernetes HPA's defaults (hpa_recommender.h): a target per
//            rule at the middle of its range, 10 % tolerance, a 15 s sync,
//            scale-down held to the highest recommendation of 300 s,
//            scale-up by at most max(4, 100 %) per 15 s. It uses `window`
//            for its metrics and neither scale_down_delay nor the lean keys.
// With `headroom` h, "keeps the bound" means: the evaluator's range for the
// averages × (1 + h) (so `rate < 20` with 15 % is met at 17.4/instance).
// Lean has a hysteresis of −8 / +5 points: the short window triggers a
// scale-up only when h − 8 points would need more instances, and a
// scale-down goes to the count for h + 5 points, so one-second noise on a
// steady load does not flap the count by one.
// The result is clamped into the range the rules give for the plain
// averages, so lean never breaks a rule that reactor would keep.
//
// Scale to zero (scale_to_zero.h): with min_instances = 0 an endpoint keeps
// one instance until it has seen no request (rate and active 0 over
// `window`) for idle_timeout, then drains to zero; at zero, the requests
// nginx holds (from `WakeSource`, asked only while no instance is in
// service) are demand: at least one instance, more for a burst.
//
// The same object drives the agent (agent/runtime/reconciler.h, real clock,
// metrics from nginx) and `reactor simulate` (agent/simulate/, a simulated
// clock and modelled metrics): one engine, two drivers.
//
// Thread: called by one thread only (the agent loop, or the simulator).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/scaler/hpa_recommender.h"
#include "agent/scaler/scaling_policy.h"
#include "agent/scaler/wake_source.h"
#include "rules/rules.h"

namespace reactor {

/// Where the policy gets its numbers: per-instance averages over `window` of
/// the endpoint's traffic (rate, response, bytes, errors, active, ...) for
/// the instances in service, plus custom metrics.
class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  /// Averages divided by backends.size() (the instances in service).
  virtual std::map<std::string, double> Averages(const std::string& endpoint, Duration window,
                                                 const std::vector<std::string>& backends) = 0;
};

class RulesPolicy : public ScalingPolicy {
 public:
  /// Both must outlive the policy; so must `wake`, which may be null (no
  /// request holds: nothing wakes an endpoint at zero but its rules).
  RulesPolicy(MetricsSource& metrics, Clock& clock, WakeSource* wake = nullptr)
      : metrics_(metrics), clock_(clock), wake_(wake) {}

  Decision Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>& active_addresses) override;

  /// Forgets an endpoint's history (after unmanage): a new endpoint of the
  /// same name starts afresh.
  void Forget(const std::string& endpoint) override { history_.erase(endpoint); }

 private:
  struct History {
    std::string rules_text;
    std::optional<rules::RuleSet> rules;
    std::deque<std::pair<TimePoint, long>> targets;  // reactor: targets computed, oldest first
    std::map<long, TimePoint> long_seen;             // lean: long-window count → the last time it was computed
    std::map<long, TimePoint> short_seen;            // lean: short-window count → the last time it was computed
    bool watching = false;                           // first_seen is set
    TimePoint first_seen{};
    std::optional<TimePoint> last_busy;  // the last decision that saw a request (or held ones)
    HpaRecommender hpa;                  // policy = hpa: the controller's sync, recommendations, events
  };
  /// Per-instance averages over `window`, rescaled so that average × current
  /// is the endpoint's total (see Decide).
  std::map<std::string, double> ScaledAverages(const EndpointConfig& cfg, Duration window, int current,
                                               const std::vector<std::string>& active_addresses);

  MetricsSource& metrics_;
  Clock& clock_;
  WakeSource* wake_;
  std::map<std::string, History> history_;
};

/// "rate 41.2/instance breaks rate < 20" for every broken rule, or "" when all hold.
std::string DescribeBrokenRules(const rules::RuleSet& set, const std::map<std::string, double>& metrics);

/// The lean policy's count for these averages: the lowest count of the
/// evaluator's range for `metrics` × (1 + headroom_percent / 100), clamped
/// into `range` (the range for the plain metrics). Pure; exposed for tests.
long LeanCount(const rules::RuleSet& set, long instances, const std::map<std::string, double>& metrics,
               long min_instances, long max_instances, int headroom_percent, const rules::Range& range);

}  // namespace reactor
