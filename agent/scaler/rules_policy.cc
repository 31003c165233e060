#include "agent/scaler/rules_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "agent/common/units.h"
#include "agent/scaler/scale_to_zero.h"

namespace reactor {

namespace {

// Lean's hysteresis, in headroom percentage points: a scale-up on the short
// window needs the count for `headroom` − 8 points to exceed the current one
// (it then goes to the count for `headroom`), and a step down goes to the
// count for `headroom` + 5 points. Without a band a steady load flapped by
// one instance on its one-second noise. Measured with `reactor simulate`
// (README, "Policy results"): the wider trigger side lets 22 % headroom
// keep steady loads calm; ± 5 at 22 % costs as much and flaps more.
constexpr int kUpHysteresisPoints = 8;
constexpr int kDownHysteresisPoints = 5;

// Lean's step-dependent scale-down hold. A step of kLargeStep instances or
// more (a burst has ended: the long window's count is well below the current
// one) waits only kLargeStepHoldWindows × `window` of agreeing long-window
// counts and twice that of short-window counts. A smaller step (noise around
// a boundary) waits the whole `scale_down_delay` for the long-window counts,
// and kFlipMemoryDelays × `scale_down_delay` for the short window: a count
// the last second found too small in that time would be left again at the
// next noisy second, so stepping back to it would flip. Measured with
// `reactor simulate` on tests/bench's traces (README): one hold for every
// step had to choose between paying for each burst's tail for 30 s and
// flipping on a steady load.
constexpr long kLargeStep = 2;
constexpr int kLargeStepHoldWindows = 1;
constexpr int kFlipMemoryDelays = 10;

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

// The highest count in `seen` (count → the last time it was computed) computed
// within `hold` of `now`; `floor` when none was.
long HighestWithin(const std::map<long, TimePoint>& seen, TimePoint now, Duration hold, long floor) {
  for (auto it = seen.rbegin(); it != seen.rend() && it->first > floor; ++it) {
    if (now - it->second <= hold) return it->first;
  }
  return floor;
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

long LeanCount(const rules::RuleSet& set, long instances, const std::map<std::string, double>& metrics,
               long min_instances, long max_instances, int headroom_percent, const rules::Range& range) {
  const double factor = 1.0 + headroom_percent / 100.0;
  std::map<std::string, double> inflated = metrics;
  for (auto& [name, v] : inflated) v *= factor;
  rules::Evaluation ev = rules::Evaluate(set, instances, inflated, min_instances, max_instances);
  long lo = ev.range ? ev.range->min : range.min;
  return std::clamp(lo, range.min, range.max.value_or(lo));
}

std::map<std::string, double> RulesPolicy::ScaledAverages(const EndpointConfig& cfg, Duration window, int current,
                                                          const std::vector<std::string>& active_addresses) {
  // The collector divides by the instances in service; the evaluator
  // multiplies by the current count, which also includes instances still
  // starting (they serve nothing yet). Rescale so that average × current is
  // the endpoint's real total: counting a starting instance as if it carried
  // load would launch more than needed.
  std::map<std::string, double> avg = metrics_.Averages(cfg.name, window, active_addresses);
  if (current > 0 && !active_addresses.empty() && static_cast<int>(active_addresses.size()) != current) {
    double scale = static_cast<double>(active_addresses.size()) / current;
    for (auto& [name, v] : avg) {
      if (name != "active" && name.rfind("response", 0) != 0) v *= scale;
    }
  }
  return avg;
}

ScalingPolicy::Decision RulesPolicy::Decide(const EndpointConfig& cfg, int current,
                                            const std::vector<std::string>& active_addresses) {
  Decision d;
  const long min = cfg.scaling.min_instances;
  const long max = cfg.scaling.max_instances;
  TimePoint now = clock_.Now();
  History& h = history_[cfg.name];
  if (!h.watching) {
    h.watching = true;
    h.first_seen = now;
  }
  if (h.rules_text != cfg.scaling.rules || (!h.rules && !cfg.scaling.rules.empty())) {
    h.rules_text = cfg.scaling.rules;
    auto parsed = rules::ParseRules(cfg.scaling.rules);
    h.rules = parsed.ok() ? std::optional<rules::RuleSet>(*parsed.rules) : std::nullopt;
  }
  rules::RuleSet empty;
  const rules::RuleSet& set = h.rules ? *h.rules : empty;

  // Scale to zero: held requests count only while no instance serves (the
  // rules see the traffic once one does).
  const bool may_zero = min == 0;
  WakeDemand demand;
  if (wake_ != nullptr && active_addresses.empty() && max >= 1) demand = wake_->Demand(cfg.name);

  std::map<std::string, double> avg;
  if (!set.rules.empty() || may_zero) avg = ScaledAverages(cfg, cfg.scaling.window, current, active_addresses);
  bool busy = demand.held > 0 || !h.last_busy;
  for (const char* m : {"rate", "active"}) {
    auto it = avg.find(m);
    busy = busy || (it != avg.end() && it->second > 0);
  }
  if (busy) h.last_busy = now;
  rules::Evaluation ev = rules::Evaluate(set, current, avg, min, max);
  d.has_range = ev.range.has_value();
  if (ev.range) {
    d.range_min = ev.range->min;
    d.range_max = ev.range->max;
  }
  long target = ev.target;

  // Lean: the cheapest count that keeps the upper bounds with headroom. Up
  // on the short window, down on the long one. Only with every metric known
  // (a rule skipped for want of a value must not let the count fall to the
  // cheaper edge) and a range to choose in.
  std::string lean_text;
  long lean_down = -1;   // lean's long-window target, when lean chose
  long lean_short = -1;  // lean's short-window count (its scale-up trigger), when it has one
  if (cfg.scaling.policy == PolicyKind::kLean && !set.rules.empty() && ev.range && ev.missing_metrics.empty()) {
    const int hr = cfg.scaling.headroom_percent;
    // The long window: its count for `headroom` may raise the count (as the
    // short window may); a step down goes to its count for headroom + the
    // hysteresis, never above the current count.
    const long long_up = LeanCount(set, current, avg, min, max, hr, *ev.range);
    long down =
        long_up > current
            ? long_up
            : std::min<long>(current, LeanCount(set, current, avg, min, max, hr + kDownHysteresisPoints, *ev.range));
    long up = long_up;
    if (cfg.scaling.scale_up_window != cfg.scaling.window) {
      std::map<std::string, double> recent =
          ScaledAverages(cfg, cfg.scaling.scale_up_window, current, active_addresses);
      // A rising trend, extrapolated over `predict` (what a launch takes to
      // serve): the two windows' means lie (window − scale_up_window) / 2 apart.
      const double apart_s = (cfg.scaling.window - cfg.scaling.scale_up_window).count() / 2000.0;
      if (cfg.scaling.predict.count() > 0 && apart_s > 0) {
        const double ahead_s = cfg.scaling.predict.count() / 1000.0;
        for (auto& [name, v] : recent) {
          auto it = avg.find(name);
          if (it != avg.end() && v > it->second) v += (v - it->second) / apart_s * ahead_s;
        }
      }
      rules::Evaluation up_ev = rules::Evaluate(set, current, recent, min, max);
      if (up_ev.range && up_ev.missing_metrics.empty()) {
        const long trigger =
            LeanCount(set, current, recent, min, max, std::max(0, hr - kUpHysteresisPoints), *up_ev.range);
        up = trigger > current ? std::max(trigger, LeanCount(set, current, recent, min, max, hr, *up_ev.range))
                               : trigger;
        lean_short = up;
      }
    }
    target = up > current ? up : down;
    lean_down = down;
    lean_text = " (lean, " + std::to_string(hr) + "% headroom − " + std::to_string(kUpHysteresisPoints) + "/+ " +
                std::to_string(kDownHysteresisPoints) + " points: " + std::to_string(up) + " on the last " +
                FormatDuration(cfg.scaling.scale_up_window) + ", " + std::to_string(down) + " on " +
                FormatDuration(cfg.scaling.window) + ")";
  }

  // The anchors. midpoint: Gridcentric Reactor jumped to the middle of the
  // range whenever the count left it. hpa: the HPA's controller (its own
  // sync period and stabilisation; see hpa_recommender.h).
  const PolicyKind kind = cfg.scaling.policy;
  if (kind == PolicyKind::kMidpoint && ev.range) {
    const long hi = ev.range->max.value_or(std::max(min, max));
    if (current < ev.range->min || current > hi) {
      target = (ev.range->min + hi) / 2;
      lean_text = " (midpoint of the range)";
    }
  }
  HpaRecommender::Result hpa;
  if (kind == PolicyKind::kHpa && !set.rules.empty()) {
    const long ready = static_cast<long>(active_addresses.size());
    long desired = current;
    bool allow_down = true;
    long lo = min, hi = std::max(min, max);
    if (ready > 0) {
      std::map<std::string, double> raw = metrics_.Averages(cfg.name, cfg.scaling.window, active_addresses);
      long best = -1;
      for (const auto& r : set.rules) {
        std::optional<double> goal = HpaTarget(r);
        if (!goal) continue;
        auto it = raw.find(r.metric);
        if (it == raw.end()) {
          allow_down = false;  // a metric without a value forbids a scale-down
          continue;
        }
        best = std::max(best, HpaDesiredForMetric(current, ready, it->second * ready, *goal));
      }
      if (best >= 0) desired = best;
    } else if (current == 0) {
      desired = ev.target;  // nothing to measure: the rules' own answer
    }
    for (const auto& r : set.rules) {  // `instances` rules bound the count, like min/maxReplicas
      if (r.metric != "instances") continue;
      if (r.lower) lo = std::max(lo, static_cast<long>(std::floor(*r.lower)) + (r.lower_inclusive ? 0 : 1));
      if (r.upper) hi = std::min(hi, static_cast<long>(std::ceil(*r.upper)) - (r.upper_inclusive ? 0 : 1));
    }
    hpa = h.hpa.Next(now, current, desired, allow_down, lo, std::max(lo, hi));
    target = hpa.replicas;
    lean_text = " (hpa: recommends " + std::to_string(hpa.recommended) + (hpa.synced ? "" : " at its last 15s sync") +
                (hpa.rate_limited ? ", up rate-limited" : "") + ")";
  }

  // Scale to zero. With min_instances = 0 one instance stays until the
  // endpoint is idle; held requests raise the target at once.
  const bool idle = may_zero && cfg.scaling.idle_timeout > Duration(0) && ev.range && ev.range->min == 0 &&
                    now - *h.last_busy >= cfg.scaling.idle_timeout;
  if (idle) {
    target = 0;  // anywhere in a range that includes 0 (no rules: [0, max]) is not enough: zero
  } else if (may_zero && current > 0 && target < 1 && max >= 1) {
    target = 1;
  }
  int woken_by = 0;
  if (demand.held > 0) {
    const double held_for_s =
        demand.since_ms > 0 ? std::max<int64_t>(0, clock_.WallMillis() - demand.since_ms) / 1000.0 : 0.0;
    const long wake = WakeTarget(set, demand.held, held_for_s, min, max);
    if (wake > target) {
      target = wake;
      woken_by = demand.held;
    }
  }
  d.idle = idle;

  // Stabilisation: remember every computed target for scale_down_delay; a
  // scale-down goes only as low as the highest of them, and not at all until
  // the policy has watched the endpoint for a whole delay.
  //
  // Lean's hold depends on the step (see kLargeStep): it remembers, for each
  // count, the last time its long window computed it and the last time its
  // short window did; a step down to n needs every count of the step's holds
  // to be <= n.
  const bool lean = lean_down >= 0;
  if (lean) {
    h.long_seen[lean_down] = now;
    if (lean_short >= 0) h.short_seen[lean_short] = now;
  } else {
    h.targets.emplace_back(now, target);
  }
  while (!h.targets.empty() && now - h.targets.front().first > cfg.scaling.scale_down_delay) h.targets.pop_front();
  long effective = target;
  // idle_timeout is the stabilisation of the step to zero. midpoint has no
  // stabilisation; hpa brings its own.
  const bool stabilise = kind == PolicyKind::kLean || kind == PolicyKind::kReactor;
  const bool watched = now - h.first_seen >= cfg.scaling.scale_down_delay;
  if (stabilise && target < current && !(idle && target == 0) && !lean) {
    long highest = target;
    for (const auto& [t, v] : h.targets) highest = std::max(highest, v);
    if (!watched) highest = std::max<long>(highest, current);
    effective = std::min<long>(highest, current);
  } else if (stabilise && target < current && !(idle && target == 0)) {
    const Duration delay = cfg.scaling.scale_down_delay;
    const Duration large_hold = std::min(cfg.scaling.window * kLargeStepHoldWindows, delay);
    effective = current;
    for (long n = target; watched && n < current; ++n) {
      const bool large = current - n >= kLargeStep;
      const Duration long_hold = large ? large_hold : delay;
      const Duration short_hold = large ? large_hold * 2 : delay * kFlipMemoryDelays;
      if (HighestWithin(h.long_seen, now, long_hold, target) <= n &&
          HighestWithin(h.short_seen, now, short_hold, target) <= n) {
        effective = n;
        break;
      }
    }
  }
  // Stabilisation holds back what the rules recommend, never the operator's
  // limits: a lowered max_instances (or raised min) applies at once, as with
  // HPA's maxReplicas.
  effective = std::clamp<long>(effective, min, std::max(min, max));
  d.target = static_cast<int>(effective);
  d.held = effective > target || (kind == PolicyKind::kHpa && hpa.held);
  d.held_requests = woken_by;

  if (woken_by > 0 && effective != current) {
    // One line a reader finds in the log: what woke the endpoint.
    const std::string n = std::to_string(woken_by) + (woken_by == 1 ? " held request" : " held requests");
    d.explanation = (current == 0 ? "woken by " + n : n + " waiting") + " → target " + std::to_string(effective) +
                    " (min " + std::to_string(min) + ", max " + std::to_string(max) + ")";
  } else if (effective != current || target != current) {
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
    text +=
        " → target " + std::to_string(target) + " (min " + std::to_string(min) + ", max " + std::to_string(max) + ")";
    text += lean_text;
    if (d.held && kind == PolicyKind::kHpa) {
      text += "; held at " + std::to_string(effective) + " by the highest recommendation of the last " +
              FormatDuration(HpaDefaults::kScaleDownStabilisation);
    } else if (d.held && lean_down >= 0) {
      text += "; held at " + std::to_string(effective) + ": a step of one instance waits until every count of " +
              "scale_down_delay " + FormatDuration(cfg.scaling.scale_down_delay) + " (and of the last second over " +
              FormatDuration(cfg.scaling.scale_down_delay * kFlipMemoryDelays) + ") agrees, a larger one " +
              FormatDuration(std::min(cfg.scaling.window * kLargeStepHoldWindows, cfg.scaling.scale_down_delay));
    } else if (d.held) {
      text += "; held at " + std::to_string(effective) + " until every target in scale_down_delay " +
              FormatDuration(cfg.scaling.scale_down_delay) + " agrees";
    }
    if (idle && effective == 0) {
      text += "; no request for idle_timeout " + FormatDuration(cfg.scaling.idle_timeout) + ": scaling to zero";
    }
    d.explanation = text;
  }
  return d;
}

}  // namespace reactor
