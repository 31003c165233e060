// Reactor's scaling arithmetic (SPEC.md §5): hand-computed cases, then a
// randomized comparison with an oracle that works on exact integers (loads
// in quarters) and finds each rule's count range by trying every count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "rules/rules.h"

namespace reactor::rules {
namespace {

constexpr std::nullopt_t kInf = std::nullopt;

RuleSet Parse(const std::string& text) {
  ParseResult r = ParseRules(text);
  EXPECT_TRUE(r.ok()) << (r.error ? r.error->Format() : "");
  return r.rules.value_or(RuleSet{});
}

Evaluation Eval(const std::string& rules, long n, const std::map<std::string, double>& metrics, long min = 0,
                long max = 1000) {
  return Evaluate(Parse(rules), n, metrics, min, max);
}

void ExpectRange(const Range& got, long min, std::optional<long> max) {
  EXPECT_EQ(got.min, min);
  EXPECT_EQ(got.max, max);
}

// --- servers(total, B) ------------------------------------------------------------

TEST(RulesEvaluator, SpecExampleMovesToTheNearestEdge) {
  Evaluation ev = Eval("5 < rate < 20", 2, {{"rate", 30}}, 1, 10);
  ExpectRange(ev.ideal, 4, 11);  // total 60: 60/20 = 3 exactly, strict → 4; 60/5 = 12, strict → 11
  ASSERT_TRUE(ev.range);
  ExpectRange(*ev.range, 4, 10);
  EXPECT_EQ(ev.target, 4);
  EXPECT_TRUE(ev.missing_metrics.empty());
}

TEST(RulesEvaluator, UpperBoundOnlyGivesAMinimumAndNoMaximum) {
  ExpectRange(Eval("rate < 10", 3, {{"rate", 7}}).ideal, 3, kInf);  // 21/10 → 3
  ExpectRange(Eval("rate < 10", 3, {{"rate", 6}}).ideal, 2, kInf);  // 18/10 → 2
}

TEST(RulesEvaluator, StrictUpperBoundOnAnExactMultipleAddsOne) {
  ExpectRange(Eval("rate < 1", 3, {{"rate", 1}}).ideal, 4, kInf);   // 3 instances would carry exactly 1
  ExpectRange(Eval("rate <= 1", 3, {{"rate", 1}}).ideal, 3, kInf);  // inclusive: 3 is fine
  ExpectRange(Eval("10 > rate", 4, {{"rate", 5}}).ideal, 3, kInf);  // 20/10 = 2 → 3
}

TEST(RulesEvaluator, LowerBoundOnlyGivesZeroToACeiling) {
  ExpectRange(Eval("5 < rate", 4, {{"rate", 3}}).ideal, 0, 3);  // 12/5 = 2.4 → 3 (Reactor rounds up)
  ExpectRange(Eval("5 <= rate", 4, {{"rate", 3}}).ideal, 0, 3);
}

TEST(RulesEvaluator, StrictLowerBoundOnAnExactMultipleSubtractsOne) {
  ExpectRange(Eval("5 < rate", 2, {{"rate", 5}}).ideal, 0, 1);  // 10/5 = 2 → 1
  ExpectRange(Eval("5 <= rate", 2, {{"rate", 5}}).ideal, 0, 2);
  ExpectRange(Eval("rate > 5", 1, {{"rate", 5}}).ideal, 0, 0);  // 5/5 = 1 → 0, not below 0
}

TEST(RulesEvaluator, ZeroTotalNeedsNoInstancesAndNoStrictAdjustment) {
  ExpectRange(Eval("rate < 1", 3, {{"rate", 0}}).ideal, 0, kInf);
  ExpectRange(Eval("5 < rate", 3, {{"rate", 0}}).ideal, 0, 0);
  ExpectRange(Eval("5 < rate < 10", 3, {{"rate", 0}}).ideal, 0, 0);
  ExpectRange(Eval("rate < 1", 0, {{"rate", 7}}).ideal, 0, kInf);  // n = 0: total 0
  Evaluation ev = Eval("5 < rate < 10", 3, {{"rate", 0}}, 1, 5);
  ExpectRange(*ev.range, 1, 1);
  EXPECT_EQ(ev.target, 1);
}

TEST(RulesEvaluator, BoundOfZeroOrLessLeavesThatSideOpen) {
  ExpectRange(Eval("0 < rate < 1", 3, {{"rate", 2}}).ideal, 7, kInf);  // 6/1 exactly → 7; 0 → no max
  ExpectRange(Eval("0 <= rate", 3, {{"rate", 2}}).ideal, 0, kInf);
  ExpectRange(Eval("rate < 0", 3, {{"rate", 2}}).ideal, 0, kInf);
  ExpectRange(Eval("rate <= 0", 3, {{"rate", 2}}).ideal, 0, kInf);
  // Negative bounds cannot be written, but a hand-built rule may carry one.
  Rule r;
  r.metric = "rate";
  r.lower = -1;
  r.upper = -2;
  Evaluation ev = Evaluate(RuleSet{{r}}, 3, {{"rate", 2}}, 0, 10);
  ExpectRange(ev.ideal, 0, kInf);
}

TEST(RulesEvaluator, ExactMultiplesSurviveFloatingPointError) {
  // 0.3 * 3 = 0.8999999999999999 and / 0.1 = 8.999999999999998: still 9 × 0.1.
  ExpectRange(Eval("rate < 0.1", 3, {{"rate", 0.3}}).ideal, 10, kInf);
  ExpectRange(Eval("rate <= 0.1", 3, {{"rate", 0.3}}).ideal, 9, kInf);
  // 0.1 * 3 = 0.30000000000000004 and / 0.1 = 3.0000000000000004: still 3 × 0.1, not 4.
  ExpectRange(Eval("rate <= 0.1", 3, {{"rate", 0.1}}).ideal, 3, kInf);
  ExpectRange(Eval("rate < 0.1", 3, {{"rate", 0.1}}).ideal, 4, kInf);
  ExpectRange(Eval("0.1 < rate", 3, {{"rate", 0.1}}).ideal, 0, 2);
  ExpectRange(Eval("0.1 <= rate", 3, {{"rate", 0.1}}).ideal, 0, 3);
  // Units: 3 × 0.2 s against 200ms.
  ExpectRange(Eval("response < 200ms", 3, {{"response", 0.2}}).ideal, 4, kInf);
  // Just off a multiple is not a multiple.
  ExpectRange(Eval("rate < 1", 3, {{"rate", 1.000001}}).ideal, 4, kInf);
  ExpectRange(Eval("rate < 1", 3, {{"rate", 0.999999}}).ideal, 3, kInf);
  // A tiny load is not "a multiple of 0": it needs one instance.
  ExpectRange(Eval("rate <= 1", 1, {{"rate", 1e-300}}).ideal, 1, kInf);
}

TEST(RulesEvaluator, HugeValuesSaturateInsteadOfOverflowing) {
  ExpectRange(Eval("rate < 1", 10, {{"rate", 1e300}}).ideal, kCountLimit, kInf);
  ExpectRange(Eval("rate < 1", 10, {{"rate", std::numeric_limits<double>::infinity()}}).ideal, kCountLimit, kInf);
  ExpectRange(Eval("1 < rate", 10, {{"rate", 1e300}}).ideal, 0, kCountLimit);
  Evaluation ev = Eval("instances <= 100000000000000000000000", 5, {}, 0, 10);
  ExpectRange(ev.ideal, 0, kCountLimit);
  EXPECT_EQ(ev.target, 5);
}

// --- instances ------------------------------------------------------------------

TEST(RulesEvaluator, InstancesRulesBoundTheCountDirectly) {
  ExpectRange(Eval("2 < instances", 0, {}).ideal, 3, kInf);
  ExpectRange(Eval("2 <= instances", 0, {}).ideal, 2, kInf);
  ExpectRange(Eval("instances < 5", 0, {}).ideal, 0, 4);
  ExpectRange(Eval("instances <= 5", 0, {}).ideal, 0, 5);
  ExpectRange(Eval("instances > 2", 0, {}).ideal, 3, kInf);
  ExpectRange(Eval("5 >= instances >= 2", 0, {}).ideal, 2, 5);
  ExpectRange(Eval("1 < instances < 3", 0, {}).ideal, 2, 2);
}

TEST(RulesEvaluator, InstancesRulesNeedNoMetricAndIgnoreMetricValues) {
  Evaluation ev = Eval("instances <= 3", 7, {{"instances", 100}}, 1, 10);
  ExpectRange(ev.ideal, 0, 3);
  EXPECT_EQ(ev.target, 3);
  EXPECT_TRUE(ev.missing_metrics.empty());
}

// --- Intersection -------------------------------------------------------------

TEST(RulesEvaluator, IntersectsOverlappingRules) {
  // rate: total 40, 40/10 and 40/5 exact → [5, 7]; response: 1.2 s / 0.4 exact → [4, ∞).
  Evaluation ev = Eval("5 < rate < 10, response < 0.4", 4, {{"rate", 10}, {"response", 0.3}});
  ExpectRange(ev.ideal, 5, 7);
}

TEST(RulesEvaluator, LaterRuleWhollyAboveTakesTheCurrentMax) {
  // instances <= 3 gives [0, 3]; rate < 1 with total 10 gives [11, ∞): wholly above.
  ExpectRange(Eval("instances <= 3, rate < 1", 5, {{"rate", 2}}).ideal, 3, 3);
  // In the other order the instances rule lies wholly below [11, ∞).
  ExpectRange(Eval("rate < 1, instances <= 3", 5, {{"rate", 2}}).ideal, 11, 11);
}

TEST(RulesEvaluator, LaterRuleWhollyBelowTakesTheCurrentMin) {
  ExpectRange(Eval("instances >= 6, 5 < rate", 2, {{"rate", 5}}).ideal, 6, 6);  // [6,∞) then [0,1]
  ExpectRange(Eval("5 < rate, instances >= 6", 2, {{"rate", 5}}).ideal, 1, 1);  // [0,1] then [6,∞)
}

TEST(RulesEvaluator, UnboundedMaxIsAboveEveryCount) {
  // [3, ∞) then [5, ∞): overlap [5, ∞); nothing is wholly above an unbounded range.
  ExpectRange(Eval("instances >= 3, instances >= 5", 0, {}).ideal, 5, kInf);
  // [0, 2] then [5, ∞): wholly above → [2, 2].
  ExpectRange(Eval("instances <= 2, instances >= 5", 0, {}).ideal, 2, 2);
  // [5, ∞) then [0, 2]: wholly below → [5, 5] (∞ is never below anything).
  ExpectRange(Eval("instances >= 5, instances <= 2", 0, {}).ideal, 5, 5);
}

TEST(RulesEvaluator, DuplicateMetricRulesIntersectInOrder) {
  // total 12: rate < 4 → [4, ∞) (12/4 exact → 4); rate < 3 → [5, ∞); 1 < rate → [0, 11].
  ExpectRange(Eval("rate < 4, rate < 3, 1 < rate", 3, {{"rate", 4}}).ideal, 5, 11);
}

TEST(RulesEvaluator, ThreeRulesFoldLeftToRight) {
  // [0,4] ∩ [2,∞) = [2,4]; then [6,6] is wholly above → [4,4].
  ExpectRange(Eval("instances <= 4, instances >= 2, 6 <= instances <= 6", 0, {}).ideal, 4, 4);
}

// --- Contradiction, clamp, target -------------------------------------------------

TEST(RulesEvaluator, SelfContradictingRuleKeepsTheCountClamped) {
  // total 10: rate < 6 → min 2; 5 < rate → 10/5 exact, strict → max 1: [2, 1].
  Evaluation ev = Eval("5 < rate < 6", 2, {{"rate", 5}}, 1, 10);
  ExpectRange(ev.ideal, 2, 1);
  EXPECT_FALSE(ev.range.has_value());
  EXPECT_EQ(ev.target, 2);
  EXPECT_EQ(Eval("5 < rate < 6", 2, {{"rate", 5}}, 3, 10).target, 3);
  // With n = 12 the total is 60: 60/6 and 60/5 exact → [11, 11], no longer contradictory.
  Evaluation above = Eval("5 < rate < 6", 12, {{"rate", 5}}, 1, 10);
  ExpectRange(above.ideal, 11, 11);
}

TEST(RulesEvaluator, ContradictionFromTheFirstRuleStaysUnlessALaterRuleLiesOutside) {
  // [2, 1] then [0, 10]: neither wholly above nor below → stays [2, 1].
  Evaluation ev = Eval("5 < rate < 6, instances <= 10", 2, {{"rate", 5}}, 0, 20);
  ExpectRange(ev.ideal, 2, 1);
  EXPECT_FALSE(ev.range.has_value());
  // [2, 1] then [5, ∞): wholly above the current max 1 → [1, 1], as Reactor did.
  ExpectRange(Eval("5 < rate < 6, instances >= 5", 2, {{"rate", 5}}).ideal, 1, 1);
}

TEST(RulesEvaluator, LaterSelfContradictingRuleThatOverlapsIsDisregarded) {
  // [0, 10] then [2, 1]: Reactor keeps [0, 10].
  ExpectRange(Eval("instances <= 10, 5 < rate < 6", 2, {{"rate", 5}}).ideal, 0, 10);
  // [4, 10] then [2, 1]: wholly below → [4, 4].
  ExpectRange(Eval("4 <= instances <= 10, 5 < rate < 6", 2, {{"rate", 5}}).ideal, 4, 4);
}

TEST(RulesEvaluator, ClampsAnIdealWhollyAboveMaxToMax) {
  Evaluation ev = Eval("rate < 1", 10, {{"rate", 5}}, 1, 20);  // [51, ∞)
  ExpectRange(*ev.range, 20, 20);
  EXPECT_EQ(ev.target, 20);
}

TEST(RulesEvaluator, ClampsAnIdealWhollyBelowMinToMin) {
  Evaluation ev = Eval("instances <= 2", 5, {}, 3, 20);
  ExpectRange(*ev.range, 3, 3);
  EXPECT_EQ(ev.target, 3);
}

TEST(RulesEvaluator, ClampIntersectsAnOverlappingIdeal) {
  Evaluation ev = Eval("2 <= instances <= 8", 5, {}, 4, 20);
  ExpectRange(*ev.range, 4, 8);
  EXPECT_EQ(ev.target, 5);
  ev = Eval("2 <= instances", 5, {}, 4, 6);
  ExpectRange(*ev.range, 4, 6);
}

TEST(RulesEvaluator, TargetStaysInsideTheRangeOrMovesToTheNearestEdge) {
  EXPECT_EQ(Eval("3 <= instances <= 7", 5, {}).target, 5);
  EXPECT_EQ(Eval("3 <= instances <= 7", 3, {}).target, 3);
  EXPECT_EQ(Eval("3 <= instances <= 7", 7, {}).target, 7);
  EXPECT_EQ(Eval("3 <= instances <= 7", 1, {}).target, 3);
  EXPECT_EQ(Eval("3 <= instances <= 7", 9, {}).target, 7);
  EXPECT_EQ(Eval("3 <= instances", 900, {}, 0, 1000).target, 900);
}

TEST(RulesEvaluator, NoRulesKeepsTheCountWithinMinAndMax) {
  Evaluation ev = Evaluate(RuleSet{}, 12, {{"rate", 3}}, 2, 10);
  ExpectRange(ev.ideal, 0, kInf);
  ExpectRange(*ev.range, 2, 10);
  EXPECT_EQ(ev.target, 10);
  EXPECT_EQ(Evaluate(RuleSet{}, 0, {}, 2, 10).target, 2);
  EXPECT_EQ(Evaluate(RuleSet{}, 5, {}, 2, 10).target, 5);
}

TEST(RulesEvaluator, SkipsRulesWhoseMetricIsMissingAndReportsEachOnce) {
  Evaluation ev = Eval("rate < 1, response < 1, response < 2, 2 <= instances", 5, {{"rate", 1}}, 0, 100);
  ExpectRange(ev.ideal, 6, kInf);  // rate: 5/1 exact → 6; instances: [2, ∞)
  EXPECT_EQ(ev.missing_metrics, (std::vector<std::string>{"response"}));
  ev = Eval("response < 1", 5, {{"rate", 1}}, 1, 3);  // nothing applies: like no rules
  ExpectRange(ev.ideal, 0, kInf);
  EXPECT_EQ(ev.target, 3);
}

TEST(RulesEvaluator, NaNMetricCountsAsMissing) {
  Evaluation ev = Eval("rate < 1", 5, {{"rate", std::nan("")}}, 1, 10);
  ExpectRange(ev.ideal, 0, kInf);
  EXPECT_EQ(ev.missing_metrics, (std::vector<std::string>{"rate"}));
}

TEST(RulesEvaluator, RepairsViolatedPreconditions) {
  Evaluation ev = Evaluate(RuleSet{}, -4, {}, 5, 2);  // max < min → max = min; n < 0 → 0
  ExpectRange(*ev.range, 5, 5);
  EXPECT_EQ(ev.target, 5);
  ev = Evaluate(RuleSet{}, 3, {}, -2, 10);
  ExpectRange(*ev.range, 0, 10);
}

// --- CanScaleDown ---------------------------------------------------------------

TEST(RulesCanScaleDown, NeedsALowerMetricBoundAboveZeroOrAnInstancesMaximum) {
  EXPECT_FALSE(CanScaleDown(Parse("0 < rate < 1")));
  EXPECT_FALSE(CanScaleDown(Parse("rate < 1, response < 2")));
  EXPECT_FALSE(CanScaleDown(Parse("instances >= 2")));
  EXPECT_FALSE(CanScaleDown(Parse("0 <= rate")));
  EXPECT_TRUE(CanScaleDown(Parse("0.25 < rate < 1")));
  EXPECT_TRUE(CanScaleDown(Parse("rate > 5")));
  EXPECT_TRUE(CanScaleDown(Parse("rate < 1, instances <= 4")));
  EXPECT_TRUE(CanScaleDown(Parse("10 > instances")));
}

TEST(RulesScaleDownWarning, SuggestsAQuarterOfTheUpperBound) {
  EXPECT_EQ(ScaleDownWarning(Parse("0.25 < rate < 1")), "");
  EXPECT_EQ(ScaleDownWarning(RuleSet{}), "");
  std::string w = ScaleDownWarning(Parse("0 < rate < 1"));
  EXPECT_NE(w.find("'0.25 < rate < 1'"), std::string::npos) << w;
  w = ScaleDownWarning(Parse("instances > 1, response <= 200ms"));
  EXPECT_NE(w.find("'0.05 < response <= 0.2'"), std::string::npos) << w;
  w = ScaleDownWarning(Parse("instances > 1"));
  EXPECT_NE(w.find("instances <="), std::string::npos) << w;
}

// --- Randomized comparison with a brute-force oracle ---------------------------------

// Everything is counted in quarters, so loads and bounds are exact integers and
// "exact multiple" needs no tolerance: a value v stands for v / 4.
struct OracleRule {
  std::string metric;                // "rate", "response" or "instances"
  std::optional<long> lower, upper;  // quarters (whole counts for instances)
  bool lower_inclusive = false, upper_inclusive = false;
};

constexpr long kOracleInf = 1'000'000;  // Reactor's sys.maxint
constexpr long kMaxCandidate = 1000;

// The fewest instances that keep the per-instance load under an upper bound U:
// the smallest k whose k × U exceeds (or, inclusive, reaches) the total.
long OracleMinCount(long total, long upper, bool inclusive) {
  if (upper <= 0 || total == 0) return 0;
  for (long k = 0; k <= kMaxCandidate; ++k) {
    if (inclusive ? k * upper >= total : k * upper > total) return k;
  }
  ADD_FAILURE() << "no count up to " << kMaxCandidate;
  return kMaxCandidate;
}

// The most instances a lower bound L allows: by definition the largest k whose
// per-instance load stays above (or, inclusive, at) L, i.e. k × L below the
// total; Reactor rounds that up by one whenever no count divides the total
// exactly (it takes the ceiling of total / L).
long OracleMaxCount(long total, long lower, bool inclusive) {
  if (lower <= 0) return kOracleInf;
  if (total == 0) return 0;
  long largest = 0;
  bool divides = false;
  for (long k = 0; k <= kMaxCandidate; ++k) {
    if (inclusive ? k * lower <= total : k * lower < total) largest = k;
    if (k * lower == total) divides = true;
  }
  return divides ? largest : largest + 1;
}

struct OracleRange {
  long lo, hi;  // hi == kOracleInf: unbounded
};

struct OracleResult {
  std::optional<OracleRange> ideal;  // nullopt: no rule applied
  std::optional<OracleRange> range;
  long target;
};

OracleResult Oracle(const std::vector<OracleRule>& rules, long n, const std::map<std::string, long>& avg_quarters,
                    long min, long max) {
  OracleResult out;
  for (const OracleRule& r : rules) {
    OracleRange next{0, kOracleInf};
    if (r.metric == "instances") {
      if (r.lower) next.lo = *r.lower + (r.lower_inclusive ? 0 : 1);
      if (r.upper) next.hi = *r.upper - (r.upper_inclusive ? 0 : 1);
    } else {
      auto it = avg_quarters.find(r.metric);
      if (it == avg_quarters.end()) continue;
      long total = it->second * n;
      if (r.upper) next.lo = OracleMinCount(total, *r.upper, r.upper_inclusive);
      if (r.lower) next.hi = OracleMaxCount(total, *r.lower, r.lower_inclusive);
    }
    if (!out.ideal) {
      out.ideal = next;
      continue;
    }
    OracleRange cur = *out.ideal;
    long lo = std::max(cur.lo, next.lo), hi = std::min(cur.hi, next.hi);
    if (lo <= hi) {
      out.ideal = OracleRange{lo, hi};
    } else if (next.hi < cur.lo) {
      out.ideal = OracleRange{cur.lo, cur.lo};
    } else if (next.lo > cur.hi) {
      out.ideal = OracleRange{cur.hi, cur.hi};
    }
  }
  OracleRange ideal = out.ideal.value_or(OracleRange{0, kOracleInf});
  if (ideal.hi < ideal.lo) {
    out.target = std::min(std::max(n, min), max);
    return out;
  }
  // The allowed counts: the ideal ones within [min, max], else the limit it lies beyond.
  std::vector<long> allowed;
  for (long k = min; k <= max; ++k) {
    if (k >= ideal.lo && k <= ideal.hi) allowed.push_back(k);
  }
  if (allowed.empty()) allowed.push_back(ideal.lo > max ? max : min);
  out.range = OracleRange{allowed.front(), allowed.back()};
  out.target = allowed.front();
  for (long k : allowed) {
    if (std::labs(k - n) < std::labs(out.target - n)) out.target = k;
  }
  return out;
}

TEST(RulesEvaluator, MatchesABruteForceOracleOnRandomRuleSets) {
  std::mt19937 rng(20240611);
  auto uniform = [&](long lo, long hi) { return std::uniform_int_distribution<long>(lo, hi)(rng); };
  const char* kMetrics[] = {"rate", "response", "instances"};
  int contradictions = 0, clamped_high = 0, clamped_low = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<OracleRule> orules;
    RuleSet set;
    int count = static_cast<int>(uniform(0, 4));
    for (int i = 0; i < count; ++i) {
      OracleRule o;
      o.metric = kMetrics[uniform(0, 2)];
      bool instances = o.metric == "instances";
      int sides = static_cast<int>(uniform(1, 3));  // 1 lower, 2 upper, 3 both
      if (sides & 1) o.lower = instances ? uniform(0, 12) : uniform(0, 40);
      if (sides & 2) o.upper = instances ? uniform(0, 12) : uniform(0, 40);
      o.lower_inclusive = uniform(0, 1);
      o.upper_inclusive = uniform(0, 1);
      Rule r;
      r.metric = o.metric;
      double scale = instances ? 1.0 : 4.0;
      if (o.lower) r.lower = *o.lower / scale;
      if (o.upper) r.upper = *o.upper / scale;
      r.lower_inclusive = o.lower_inclusive;
      r.upper_inclusive = o.upper_inclusive;
      orules.push_back(o);
      set.rules.push_back(r);
    }
    long n = uniform(0, 12);
    long min = uniform(0, 6), max = min + uniform(0, 8);
    std::map<std::string, long> avg_quarters;
    std::map<std::string, double> metrics;
    for (const char* m : {"rate", "response"}) {
      if (uniform(0, 9) == 0) continue;  // sometimes missing
      avg_quarters[m] = uniform(0, 40);
      metrics[m] = avg_quarters[m] / 4.0;
    }

    OracleResult want = Oracle(orules, n, avg_quarters, min, max);
    Evaluation got = Evaluate(set, n, metrics, min, max);

    std::string trace = "iteration " + std::to_string(iter) + ", n=" + std::to_string(n) +
                        " min=" + std::to_string(min) + " max=" + std::to_string(max);
    OracleRange ideal = want.ideal.value_or(OracleRange{0, kOracleInf});
    ASSERT_EQ(got.ideal.min, ideal.lo) << trace;
    ASSERT_EQ(got.ideal.max.value_or(kOracleInf), ideal.hi) << trace;
    ASSERT_EQ(got.range.has_value(), want.range.has_value()) << trace;
    if (want.range) {
      ASSERT_EQ(got.range->min, want.range->lo) << trace;
      ASSERT_EQ(got.range->max, want.range->hi) << trace;
      clamped_high += ideal.lo > max;
      clamped_low += ideal.hi < min;
    } else {
      ++contradictions;
    }
    ASSERT_EQ(got.target, want.target) << trace;
  }
  // The generator reaches every branch.
  EXPECT_GT(contradictions, 100);
  EXPECT_GT(clamped_high, 100);
  EXPECT_GT(clamped_low, 100);
}

}  // namespace
}  // namespace reactor::rules
