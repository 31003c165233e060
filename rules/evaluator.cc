// Evaluate: Reactor's arithmetic for the ideal instance range (SPEC.md §5),
// then the clamp to [min, max] and the nearest-edge target.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "rules/rules.h"

namespace reactor::rules {
namespace {

constexpr std::string_view kInstances = "instances";

// "total is an exact multiple of B" is decided on q = total / B with a
// relative tolerance: q is a multiple when |q - round(q)| <= 1e-9 * |q|.
// Averages arrive as sums divided by counts, so q carries a few ulps of error
// (0.3 * 3 / 0.1 = 9.000000000000002); 1e-9 absorbs any such error while no
// real load is tuned finer than one part in a billion. Being relative, it never
// calls a tiny non-zero q a multiple of 0.
constexpr double kMultipleTolerance = 1e-9;

/// Saturates a whole double into [-kCountLimit, kCountLimit] (NaN → 0).
long SaturatedCount(double x) {
  if (!(x == x)) return 0;
  if (x >= static_cast<double>(kCountLimit)) return kCountLimit;
  if (x <= -static_cast<double>(kCountLimit)) return -kCountLimit;
  return static_cast<long>(x);
}

enum class BoundSide { kUpper, kLower };  // `metric < B` or `B < metric`

/// servers(total, B) of SPEC §5. REQUIRES: bound > 0.
long Servers(double total, double bound, bool strict, BoundSide side) {
  const double q = total / bound;
  const double nearest = std::round(q);
  const bool multiple = total != 0 && std::fabs(q - nearest) <= kMultipleTolerance * std::fabs(q);
  double servers = multiple ? nearest : std::ceil(q);
  if (multiple && strict) servers += side == BoundSide::kUpper ? 1 : -1;
  return std::max(0L, SaturatedCount(servers));
}

/// The count range one metric rule asks for, given the metric's total.
/// A bound <= 0 leaves its side of the count range open: an upper metric
/// bound sets the count's minimum (0 when open), a lower one its maximum (∞).
Range MetricRange(const Rule& rule, double total) {
  Range r;
  if (rule.upper && *rule.upper > 0) {
    r.min = Servers(total, *rule.upper, !rule.upper_inclusive, BoundSide::kUpper);
  }
  if (rule.lower && *rule.lower > 0) {
    r.max = Servers(total, *rule.lower, !rule.lower_inclusive, BoundSide::kLower);
  }
  return r;
}

/// The count range an `instances` rule allows. Bounds are whole numbers when
/// parsed; for hand-built fractional ones this rounds inward (the integers
/// the rule admits), which equals L+1 / L / U-1 / U for whole bounds.
Range InstancesRange(const Rule& rule) {
  Range r;
  if (rule.lower) {
    r.min = SaturatedCount(rule.lower_inclusive ? std::ceil(*rule.lower) : std::floor(*rule.lower) + 1);
  }
  if (rule.upper) {
    r.max = SaturatedCount(rule.upper_inclusive ? std::floor(*rule.upper) : std::ceil(*rule.upper) - 1);
  }
  return r;
}

bool Inverted(const Range& r) { return r.max && *r.max < r.min; }

/// Reactor's intersection of the range so far with the next rule's.
///
/// An unbounded max (∞) is taken as above every count, as Reactor's
/// sys.maxint was: a range reaching ∞ is never "wholly below" another, and no
/// range is "wholly above" one that reaches ∞. When the intersection is empty
/// the later range is checked for lying wholly below first, then wholly
/// above, as Reactor did. If it is neither (only possible when one of the two
/// is itself inverted, i.e. a rule like `5 < rate < 6` that no count can
/// satisfy), Reactor kept the current range, and so do we.
Range Intersect(const Range& cur, const Range& next) {
  Range both;
  both.min = std::max(cur.min, next.min);
  if (cur.max && next.max) {
    both.max = std::min(*cur.max, *next.max);
  } else {
    both.max = cur.max ? cur.max : next.max;
  }
  if (!Inverted(both)) return both;
  if (next.max && *next.max < cur.min) return Range{cur.min, cur.min};
  if (cur.max && next.min > *cur.max) return Range{*cur.max, *cur.max};
  return cur;
}

std::string FormatNumber(double x) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(x);
}

}  // namespace

bool CanScaleDown(const RuleSet& set) {
  return std::any_of(set.rules.begin(), set.rules.end(), [](const Rule& r) {
    if (r.metric == kInstances) return r.upper.has_value();
    return r.lower && *r.lower > 0;
  });
}

std::string ScaleDownWarning(const RuleSet& set) {
  // An empty set does not scale at all (the count stays within [min, max]).
  if (set.rules.empty() || CanScaleDown(set)) return "";
  std::string example = "'5 < rate' or 'instances <= 10'";
  for (const Rule& r : set.rules) {
    if (r.metric != kInstances && r.upper && *r.upper > 0) {
      // A quarter of the upper bound: a 4x band, wide enough not to flap.
      example = "'" + FormatNumber(*r.upper / 4) + " < " + r.metric + (r.upper_inclusive ? " <= " : " < ") +
                FormatNumber(*r.upper) + "'";
      break;
    }
  }
  return "these rules scale up but never down: no rule has a lower metric bound above 0 or an upper "
         "'instances' bound; add one, e.g. " +
         example;
}

Evaluation Evaluate(const RuleSet& set, long instances, const std::map<std::string, double>& metrics,
                    long min_instances, long max_instances) {
  min_instances = std::max(0L, min_instances);
  max_instances = std::max(min_instances, max_instances);
  instances = std::max(0L, instances);

  Evaluation ev;
  bool any = false;  // the first rule applied sets the range outright, as in Reactor
  for (const Rule& rule : set.rules) {
    Range r;
    if (rule.metric == kInstances) {
      r = InstancesRange(rule);
    } else {
      auto it = metrics.find(rule.metric);
      if (it == metrics.end() || std::isnan(it->second)) {
        if (std::find(ev.missing_metrics.begin(), ev.missing_metrics.end(), rule.metric) == ev.missing_metrics.end()) {
          ev.missing_metrics.push_back(rule.metric);
        }
        continue;
      }
      r = MetricRange(rule, it->second * static_cast<double>(instances));
    }
    ev.ideal = any ? Intersect(ev.ideal, r) : r;
    any = true;
  }

  const Range& ideal = ev.ideal;
  if (Inverted(ideal)) {
    // The rules contradict each other: keep the current count, within limits.
    ev.range.reset();
    ev.target = std::clamp(instances, min_instances, max_instances);
    return ev;
  }
  Range range;
  if (ideal.min > max_instances) {
    range = Range{max_instances, max_instances};
  } else if (ideal.max && *ideal.max < min_instances) {
    range = Range{min_instances, min_instances};
  } else {
    range = Range{std::max(ideal.min, min_instances), std::min(ideal.max.value_or(max_instances), max_instances)};
  }
  ev.range = range;
  ev.target = std::clamp(instances, range.min, *range.max);
  return ev;
}

}  // namespace reactor::rules
