// The scaling policy of SPEC.md §5: per-instance metric averages → the rule
// evaluator's ideal range → clamp to [min, max] → target, with Kubernetes
// HPA-style stabilisation: scale-up acts at once, scale-down only when every
// target computed during the last `scale_down_delay` allows it.
//
// Thread: called by the agent loop only.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/runtime/reconciler.h"
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
  /// Both must outlive the policy.
  RulesPolicy(MetricsSource& metrics, Clock& clock) : metrics_(metrics), clock_(clock) {}

  Decision Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>& active_addresses) override;

  /// Forgets an endpoint's history (after unmanage).
  void Forget(const std::string& endpoint) { history_.erase(endpoint); }

 private:
  struct History {
    std::string rules_text;
    std::optional<rules::RuleSet> rules;
    std::deque<std::pair<TimePoint, long>> targets;  // targets computed, oldest first
    TimePoint first_seen{};
  };

  MetricsSource& metrics_;
  Clock& clock_;
  std::map<std::string, History> history_;
};

/// "rate 41.2/instance breaks rate < 20" for every broken rule, or "" when all hold.
std::string DescribeBrokenRules(const rules::RuleSet& set, const std::map<std::string, double>& metrics);

}  // namespace reactor
