#include "agent/scaler/rules_policy.h"

#include <gtest/gtest.h>

#include "fake_clock.h"

namespace reactor {
namespace {

class FakeMetrics : public MetricsSource {
 public:
  std::map<std::string, double> Averages(const std::string&, Duration w, const std::vector<std::string>& b) override {
    last_backends = b.size();
    auto it = by_window.find(w.count());
    return it == by_window.end() ? values : it->second;
  }
  std::map<std::string, double> values;
  std::map<int64_t, std::map<std::string, double>> by_window;  // window ms → values, when given
  size_t last_backends = 0;
};

EndpointConfig Config(const std::string& rules, int min, int max, Duration delay = Duration(30000),
                      PolicyKind policy = PolicyKind::kLean) {
  EndpointConfig c;
  c.scaling.policy = policy;
  c.name = "web";
  c.scaling.rules = rules;
  c.scaling.min_instances = min;
  c.scaling.max_instances = max;
  c.scaling.scale_down_delay = delay;
  c.scaling.headroom_percent =
      15;  // the arithmetic below is for 15 %; the default (22 %) is in endpoint_scaling_keys_test
  return c;
}

std::vector<std::string> Backends(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("127.0.0.1:" + std::to_string(30000 + i));
  return out;
}

TEST(RulesPolicy, ScalesUpAtOnceToTheNearestEdge) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  m.values["rate"] = 41.2;  // per instance, 1 instance: total 41.2 → ceil(41.2/20) = 3
  auto d = p.Decide(Config("5 < rate < 20", 1, 10), 1, Backends(1));
  EXPECT_EQ(d.target, 3);
  ASSERT_TRUE(d.range_min.has_value());
  EXPECT_EQ(*d.range_min, 3);
  EXPECT_NE(d.explanation.find("rate 41.2/instance breaks 5 < rate < 20"), std::string::npos) << d.explanation;
  EXPECT_NE(d.explanation.find("target 3"), std::string::npos) << d.explanation;
}

TEST(RulesPolicy, HoldsScaleDownUntilDelayAgrees) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(30000));
  m.values["rate"] = 1;  // 4 instances × 1 = 4 req/s: ideal [1, 1]
  auto d = p.Decide(cfg, 4, Backends(4));
  EXPECT_EQ(d.target, 4) << "no scale-down before the policy has watched a whole delay";
  EXPECT_NE(d.explanation.find("held at 4"), std::string::npos) << d.explanation;
  for (int s = 1; s <= 29; ++s) {
    clock.Advance(Duration(1000));
    EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 4) << "second " << s;
  }
  clock.Advance(Duration(1000));
  EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 1);
}

TEST(RulesPolicy, ReactorScaleDownGoesOnlyAsLowAsTheHighestRecentTarget) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(10000), PolicyKind::kReactor);
  m.values["rate"] = 10;  // 4 × 10 = 40: range [3, 7] → stays 4
  for (int s = 0; s < 11; ++s) {
    EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 4);
    clock.Advance(Duration(1000));
  }
  m.values["rate"] = 14;  // 4 × 14 = 56: [3, 11] → 4
  EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 4);
  clock.Advance(Duration(1000));
  m.values["rate"] = 2;  // 8 total: [ceil(8/20), ceil(8/5)] = [1, 2] → 2; recent targets were 4 → hold at 4
  EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 4);
  clock.Advance(Duration(10001));
  EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 2);
}

TEST(RulesPolicy, LoweredMaxInstancesAppliesAtOnce) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  EXPECT_EQ(p.Decide(Config("", 3, 3), 3, Backends(3)).target, 3);
  clock.Advance(Duration(1000));
  auto d = p.Decide(Config("", 1, 1), 3, Backends(3));
  EXPECT_EQ(d.target, 1) << "the limit is not a recommendation to stabilise: " << d.explanation;
  EXPECT_EQ(d.explanation.find("held at"), std::string::npos) << d.explanation;
  // Rules that want more than the new max do not hold it up either.
  m.values["rate"] = 100;
  EXPECT_EQ(p.Decide(Config("5 < rate < 20", 1, 2, Duration(30000)), 4, Backends(4)).target, 2);
}

TEST(RulesPolicy, ScaleUpIsNotHeldBack) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("rate < 10", 1, 10);
  m.values["rate"] = 1;
  EXPECT_EQ(p.Decide(cfg, 2, Backends(2)).target, 2);
  m.values["rate"] = 25;  // 2 × 25 = 50 → ceil(50/10) = 5, exact multiple of a strict upper → 6
  EXPECT_EQ(p.Decide(cfg, 2, Backends(2)).target, 6);
}

TEST(RulesPolicy, StartingInstancesCountButCarryNoLoad) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("rate < 20", 1, 10);
  // One instance in service sees 50 req/s; two more are starting. The
  // endpoint's total is 50, so 3 instances are enough: do not launch more.
  m.values["rate"] = 50;
  EXPECT_EQ(p.Decide(cfg, 3, Backends(1)).target, 3);
}

TEST(RulesPolicy, ClampsToMinAndMaxAndHandlesNoRules) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  m.values["rate"] = 1000;
  EXPECT_EQ(p.Decide(Config("rate < 1", 1, 5), 1, Backends(1)).target, 5);
  EXPECT_EQ(p.Decide(Config("", 2, 5), 1, Backends(1)).target, 2);
  EXPECT_EQ(p.Decide(Config("", 2, 5), 4, Backends(4)).target, 4);
}

TEST(RulesPolicy, ContradictingRulesKeepTheCount) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  // total 10: servers(10, 6) = 2 but 5 < rate gives servers(10, 5) = 2 - 1 = 1 → [2, 1], inverted.
  m.values["rate"] = 5;
  auto d = p.Decide(Config("5 < rate < 6", 1, 10), 2, Backends(2));
  EXPECT_FALSE(d.has_range);
  EXPECT_EQ(d.target, 2);
  EXPECT_EQ(p.Decide(Config("5 < rate < 6", 3, 10), 2, Backends(2)).target, 3) << "still clamped into [min, max]";
}

TEST(RulesPolicy, LeanStepsDownToTheCheaperEdgeWithHeadroom) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(10000));
  // 4 × 10 = 40 req/s: the range is [3, 7]. Reactor stays at 4; lean wants
  // the fewest that keep rate < 20 with 15% to spare: ⌈46 / 20⌉ = 3.
  m.values["rate"] = 10;
  auto d = p.Decide(cfg, 4, Backends(4));
  EXPECT_EQ(d.target, 4);
  EXPECT_TRUE(d.held) << "not before the policy has watched a whole scale_down_delay";
  EXPECT_NE(d.explanation.find("range [3, 7] → target 3"), std::string::npos) << d.explanation;
  EXPECT_NE(d.explanation.find("lean, 15% headroom − 8/+ 5 points"), std::string::npos) << d.explanation;
  for (int s = 1; s < 10; ++s) {
    clock.Advance(Duration(1000));
    EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 4) << s;
  }
  clock.Advance(Duration(1000));
  d = p.Decide(cfg, 4, Backends(4));
  EXPECT_EQ(d.target, 3);
  EXPECT_FALSE(d.held);
  // 3 × 13.33 = 40 with headroom is 46 → 3 still: no further step.
  m.values["rate"] = 40.0 / 3;
  clock.Advance(Duration(1000));
  EXPECT_EQ(p.Decide(cfg, 3, Backends(3)).target, 3);
  // Without headroom 40 / 20 = 2 is an exact multiple of a strict bound: 3 as well;
  // 38 req/s needs only 2.
  // A step of one instance also waits until the last second's counts of 3
  // are 10 × the delay old (see LeanNoiseAroundABoundary...).
  cfg.scaling.headroom_percent = 0;
  m.values["rate"] = 38.0 / 3;
  clock.Advance(Duration(101000));
  EXPECT_EQ(p.Decide(cfg, 3, Backends(3)).target, 2);
}

// Per-instance rates for `current` instances from endpoint totals (req/s)
// on the long (5 s) and the short (1 s) window.
void SetLoad(FakeMetrics& m, double long_total, double short_total, int current) {
  m.by_window[5000]["rate"] = long_total / current;
  m.by_window[1000]["rate"] = short_total / current;
}

// A burst ends: 150 req/s on 10 instances falls to 45. Lean (15 %) wants
// ⌈45 × 1.20 / 20⌉ = 3 on the long window and ⌈45 × 1.07 / 20⌉ = 3 on the
// last second: a step of 7, so it waits only until the long window's counts
// of the last `window` (5 s) and the short window's of the last 2 × window
// (the 9 it computed at 150 req/s: ⌈150 × 1.07 / 20⌉) agree, then goes
// straight to 3, long before scale_down_delay (30 s).
TEST(RulesPolicy, LeanBurstEndStepsDownAfterTheShortHold) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 20, Duration(30000));
  SetLoad(m, 150, 150, 10);
  for (int s = 0; s <= 40; ++s) {  // longer than a delay: the policy has watched the endpoint
    ASSERT_EQ(p.Decide(cfg, 10, Backends(10)).target, 10) << s;
    clock.Advance(Duration(1000));
  }
  SetLoad(m, 45, 45, 10);
  for (int s = 0; s < 9; ++s) {  // the 9 of the last round at 150 req/s is at most 10 s old
    auto d = p.Decide(cfg, 10, Backends(10));
    EXPECT_EQ(d.target, 10) << s << ": " << d.explanation;
    EXPECT_TRUE(d.held) << s;
    clock.Advance(Duration(1000));
  }
  clock.Advance(Duration(1000));  // 11 s after the last round at 150 req/s
  auto d = p.Decide(cfg, 10, Backends(10));
  EXPECT_EQ(d.target, 3) << d.explanation;
  EXPECT_FALSE(d.held);
}

// Noise around a boundary: 8 instances, the long window's count falls from 8
// (125 req/s: ⌈125 × 1.20 / 20⌉) to 7 (115 req/s: ⌈138 / 20⌉). A step of one
// instance waits the whole scale_down_delay (30 s), not the short hold. At 7
// a noisy second of 135 req/s triggers (⌈135 × 1.07 / 20⌉ = 8 > 7) and 8
// launch again; the step back to 7, a count the last second found too small,
// then waits 10 × scale_down_delay (300 s) after that second: the count does
// not flip faster than the delay, and a boundary that keeps flipping stays
// at the higher count.
TEST(RulesPolicy, LeanNoiseAroundABoundaryDoesNotFlipFasterThanScaleDownDelay) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 20, Duration(30000));
  SetLoad(m, 125, 115, 8);
  for (int s = 0; s <= 40; ++s) {
    ASSERT_EQ(p.Decide(cfg, 8, Backends(8)).target, 8) << s;
    clock.Advance(Duration(1000));
  }
  SetLoad(m, 115, 115, 8);
  for (int s = 1; s < 30; ++s) {  // the long window's 8 of the last round at 125 is at most 30 s old
    auto d = p.Decide(cfg, 8, Backends(8));
    EXPECT_EQ(d.target, 8) << s << ": " << d.explanation;
    clock.Advance(Duration(1000));
  }
  clock.Advance(Duration(1000));
  auto d = p.Decide(cfg, 8, Backends(8));
  EXPECT_EQ(d.target, 7) << "after the whole scale_down_delay: " << d.explanation;
  clock.Advance(Duration(1000));
  SetLoad(m, 115, 135, 7);
  EXPECT_EQ(p.Decide(cfg, 7, Backends(7)).target, 8) << "a noisy second at 7 triggers";
  const TimePoint noisy = clock.Now();
  SetLoad(m, 115, 115, 8);
  while (clock.Now() - noisy < Duration(300000)) {
    clock.Advance(Duration(1000));
    d = p.Decide(cfg, 8, Backends(8));
    ASSERT_EQ(d.target, 8) << (clock.Now() - noisy).count() << " ms after the noisy second: " << d.explanation;
  }
  clock.Advance(Duration(1000));
  EXPECT_EQ(p.Decide(cfg, 8, Backends(8)).target, 7) << "once the noisy second is 10 × the delay old";
}

TEST(RulesPolicy, LeanScalesUpOnTheShortWindowAndDownOnTheLongOne) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(0));
  // The last second says 50 on 2 (100 req/s), the 5 s window only 15 (30 req/s).
  m.by_window[1000]["rate"] = 50;
  m.by_window[5000]["rate"] = 15;
  auto d = p.Decide(cfg, 2, Backends(2));
  EXPECT_EQ(d.target, 6) << "⌈115 / 20⌉ from the last second: " << d.explanation;
  ASSERT_TRUE(d.range_min.has_value());
  EXPECT_EQ(*d.range_min, 2) << "the range reported is the window's, as `rules ideal` computes it";
  EXPECT_EQ(*d.range_max, 5);
  // The other way round: a quiet last second does not bring the count down
  // by itself; the long window decides the step down (delay 0 here).
  m.by_window[1000]["rate"] = 1;
  m.by_window[5000]["rate"] = 12;
  clock.Advance(Duration(1000));
  EXPECT_EQ(p.Decide(cfg, 6, Backends(6)).target, 5) << "down with 5 points more headroom: ⌈6 × 12 × 1.20 / 20⌉ = 5";
  // The reactor policy reads only the long window.
  auto reactor = Config("5 < rate < 20", 1, 10, Duration(0), PolicyKind::kReactor);
  m.by_window[1000]["rate"] = 50;
  EXPECT_EQ(p.Decide(reactor, 2, Backends(2)).target, 2);
}

// Hysteresis: at 7 instances on a steady 100 req/s, a noisy last second of
// 125 req/s would want ⌈125 × 1.15 / 20⌉ = 8, but the trigger is headroom − 5
// points: ⌈125 × 1.10 / 20⌉ = 7, no launch; and the step down is judged with
// + 5 points: ⌈100 × 1.20 / 20⌉ = 6 is an exact multiple of the strict bound,
// so 7 stay. A real step (150 req/s: ⌈165 / 20⌉ = 9 > 7) still scales up,
// to ⌈150 × 1.15 / 20⌉ = 9.
TEST(RulesPolicy, LeanDoesNotFlapOnTheNoiseOfASteadyLoad) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 20, Duration(30000));
  m.by_window[5000]["rate"] = 100.0 / 7;
  const double noisy[] = {95, 125, 104, 88, 121, 110, 99, 125};
  for (int s = 0; s < 120; ++s) {
    m.by_window[1000]["rate"] = noisy[s % 8] / 7;
    auto d = p.Decide(cfg, 7, Backends(7));
    EXPECT_EQ(d.target, 7) << "second " << s << ": " << d.explanation;
    clock.Advance(Duration(1000));
  }
  m.by_window[1000]["rate"] = 150.0 / 7;
  EXPECT_EQ(p.Decide(cfg, 7, Backends(7)).target, 9);
}

// Gridcentric Reactor's own target: inside the range it stays; outside, it
// jumps to the middle of the range, and a scale-down is not held.
TEST(RulesPolicy, MidpointJumpsToTheMiddleOfTheRangeAtOnce) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 20, Duration(30000), PolicyKind::kMidpoint);
  m.values["rate"] = 60;  // 60 on 1: range [4, 11] → 7
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 7);
  m.values["rate"] = 60.0 / 7;
  EXPECT_EQ(p.Decide(cfg, 7, Backends(7)).target, 7);
  m.values["rate"] = 1;  // 12 on 12: range [1, 3] → 2, no delay
  auto d = p.Decide(cfg, 12, Backends(12));
  EXPECT_EQ(d.target, 2) << d.explanation;
  EXPECT_FALSE(d.held);
}

TEST(RulesPolicy, LeanKeepsTheCountWhenARuleHasNoValue) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("queue < 10, 5 < rate < 20", 1, 10, Duration(0));
  m.values["rate"] = 10;  // 40 req/s on 4: [3, 7]; queue unknown
  clock.Advance(Duration(1000));
  auto d = p.Decide(cfg, 4, Backends(4));
  EXPECT_EQ(d.target, 4) << "a skipped rule must not let the count fall to the cheaper edge: " << d.explanation;
}

TEST(RulesPolicy, HeldIsAFieldOfTheDecision) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(5000));
  m.values["rate"] = 1;
  EXPECT_TRUE(p.Decide(cfg, 4, Backends(4)).held);
  clock.Advance(Duration(6000));
  auto d = p.Decide(cfg, 4, Backends(4));
  EXPECT_FALSE(d.held);
  EXPECT_EQ(d.target, 1);
  m.values["rate"] = 50;
  EXPECT_FALSE(p.Decide(cfg, 1, Backends(1)).held) << "a scale-up is never held";
}

TEST(RulesPolicy, ForgetStartsAnEndpointAfresh) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(5000));
  m.values["rate"] = 1;
  p.Decide(cfg, 4, Backends(4));
  clock.Advance(Duration(6000));
  EXPECT_EQ(p.Decide(cfg, 4, Backends(4)).target, 1);
  // Unmanaged and managed again under the same name: a new endpoint, whose
  // scale-down waits for a whole delay like any other.
  ScalingPolicy& as_interface = p;
  as_interface.Forget("web");
  clock.Advance(Duration(1000));
  auto d = p.Decide(cfg, 4, Backends(4));
  EXPECT_EQ(d.target, 4);
  EXPECT_TRUE(d.held);
}

TEST(RulesPolicy, LeanCountClampsIntoTheRange) {
  auto set = *rules::ParseRules("15 < rate < 20").rules;
  // 3 × 17 = 51: range [3, 3]; with 10% headroom 56.1 wants 3 as well.
  rules::Range range{3, 3};
  EXPECT_EQ(LeanCount(set, 3, {{"rate", 17}}, 1, 10, 10, range), 3);
  // 3 × 19 = 57: range [3, 3]; headroom would want ⌈62.7 / 20⌉ = 4, which
  // breaks 15 < rate: clamped to the range.
  EXPECT_EQ(LeanCount(set, 3, {{"rate", 19}}, 1, 10, 10, range), 3);
}

}  // namespace
}  // namespace reactor
