#include "agent/scaler/rules_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "agent/common/units.h"

namespace reactor {

namespace {

std::string Num(double v) {
  char buf[32];
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

std::string RangeText(long lo, std::optional<long> hi) {
  return "[" + std::to_string(lo) + ", " + (hi ? std::to_string(*hi) : std::string("∞")) + "]";
}

}  // namespace

std::string DescribeBrokenRules(const rules::RuleSet& set, const std::map<std::string, double>& metrics) {
  std::string out;
  for (const auto& r : set.rules) {
    if (r.metric == "instances") continue;
    auto it = metrics.find(r.metric);
    if (it == metrics.end()) continue;
    double v = it->second;
    bool low = r.lower && (r.lower_inclusive ? v < *r.lower : v <= *r.lower);
    bool high = r.upper && (r.upper_inclusive ? v > *r.upper : v >= *r.upper);
    if (!low && !high) continue;
    if (!out.empty()) out += ", ";
    out += r.metric + " " + Num(v) + "/instance breaks " + r.text;
  }
  return out;
}

ScalingPolicy::Decision RulesPolicy::Decide(const EndpointConfig& cfg, int current,
                                            const std::vector<std::string>& active_addresses) {
  Decision d;
  const long min = cfg.scaling.min_instances;
  const long max = cfg.scaling.max_instances;
  TimePoint now = clock_.Now();
  History& h = history_[cfg.name];
  if (h.targets.empty() && h.first_seen == TimePoint{}) h.first_seen = now;
  if (h.rules_text != cfg.scaling.rules || (!h.rules && !cfg.scaling.rules.empty())) {
    h.rules_text = cfg.scaling.rules;
    auto parsed = rules::ParseRules(cfg.scaling.rules);
    h.rules = parsed.ok() ? std::optional<rules::RuleSet>(*parsed.rules) : std::nullopt;
  }
  rules::RuleSet empty;
  const rules::RuleSet& set = h.rules ? *h.rules : empty;

  // Per-instance averages for the rule evaluator. The collector divides by the
  // instances in service; the evaluator multiplies by the current count, which
  // also includes instances still starting (they serve nothing yet). Rescale so
  // that average × current is the endpoint's real total: counting a starting
  // instance as if it carried load would launch more than needed.
  std::map<std::string, double> avg;
  if (!set.rules.empty()) {
    avg = metrics_.Averages(cfg.name, cfg.scaling.window, active_addresses);
    if (current > 0 && !active_addresses.empty() && static_cast<int>(active_addresses.size()) != current) {
      double scale = static_cast<double>(active_addresses.size()) / current;
      for (auto& [name, v] : avg) {
        if (name != "active" && name.rfind("response", 0) != 0) v *= scale;
      }
    }
  }
  rules::Evaluation ev = rules::Evaluate(set, current, avg, min, max);
  d.has_range = ev.range.has_value();
  if (ev.range) {
    d.range_min = ev.range->min;
    d.range_max = ev.range->max;
  }
  long target = ev.target;

  // Stabilisation: remember every computed target for scale_down_delay; a
  // scale-down goes only as low as the highest of them, and not at all until
  // the policy has watched the endpoint for a whole delay.
  h.targets.emplace_back(now, target);
  while (!h.targets.empty() && now - h.targets.front().first > cfg.scaling.scale_down_delay) h.targets.pop_front();
  long effective = target;
  if (target < current) {
    long highest = target;
    for (const auto& [t, v] : h.targets) highest = std::max(highest, v);
    if (now - h.first_seen < cfg.scaling.scale_down_delay) highest = std::max<long>(highest, current);
    effective = std::min<long>(highest, current);
  }
  // Stabilisation holds back what the rules recommend, never the operator's
  // limits: a lowered max_instances (or raised min) applies at once, as with
  // HPA's maxReplicas.
  effective = std::clamp<long>(effective, min, std::max(min, max));
  d.target = static_cast<int>(effective);

  if (effective != current || target != current) {
    std::string why = DescribeBrokenRules(set, avg);
    if (why.empty()) why = set.rules.empty() ? "no rules" : "all rules hold";
    if (!ev.missing_metrics.empty()) {
      why += " (no value for";
      for (const auto& m : ev.missing_metrics) why += " " + m;
      why += ")";
    }
    std::string text = why + " → ideal " + RangeText(ev.ideal.min, ev.ideal.max);
    if (ev.range) {
      text += " → range " + RangeText(ev.range->min, ev.range->max);
    } else {
      text += " (rules contradict each other)";
    }
    text += " → target " + std::to_string(target) + " (min " + std::to_string(min) + ", max " + std::to_string(max) + ")";
    if (effective != target) {
      text += "; held at " + std::to_string(effective) + " until every target in scale_down_delay " +
              FormatDuration(cfg.scaling.scale_down_delay) + " agrees";
    }
    d.explanation = text;
  }
  return d;
}

}  // namespace reactor
