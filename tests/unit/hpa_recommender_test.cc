// The HPA model (policy = hpa) on inputs worked out by hand: its formula and
// tolerance, starting instances, the 15 s sync, the scale-up rate limit and
// the 300 s scale-down stabilisation.
#include "agent/scaler/hpa_recommender.h"

#include <gtest/gtest.h>

#include "agent/scaler/rules_policy.h"
#include "fake_clock.h"

namespace reactor {
namespace {

TEST(HpaDesiredForMetric, IsTheCeilingOfCurrentTimesTheRatio) {
  // 4 instances at 20/instance, target 12.5: ratio 1.6 → ⌈6.4⌉ = 7.
  EXPECT_EQ(HpaDesiredForMetric(4, 4, 80, 12.5), 7);
  // 4 at 5/instance: ratio 0.4 → ⌈1.6⌉ = 2.
  EXPECT_EQ(HpaDesiredForMetric(4, 4, 20, 12.5), 2);
}

TEST(HpaDesiredForMetric, KeepsTheCountWithinTheTolerance) {
  EXPECT_EQ(HpaDesiredForMetric(4, 4, 4 * 13.7, 12.5), 4);  // ratio 1.096
  EXPECT_EQ(HpaDesiredForMetric(4, 4, 4 * 11.3, 12.5), 4);  // ratio 0.904
  EXPECT_EQ(HpaDesiredForMetric(4, 4, 4 * 13.9, 12.5), 5);  // ratio 1.112 → ⌈4.45⌉
}

TEST(HpaDesiredForMetric, StartingInstancesCountAsIdleForAScaleUp) {
  // 4 ready carry 80 (ratio 1.6) but 6 exist: with the 2 starting at 0 the
  // ratio is 80 / 6 / 12.5 = 1.067, within the tolerance: no change.
  EXPECT_EQ(HpaDesiredForMetric(6, 4, 80, 12.5), 6);
  // 4 ready carry 120 (2.4): 120 / 6 / 12.5 = 1.6 → ⌈9.6⌉ = 10.
  EXPECT_EQ(HpaDesiredForMetric(6, 4, 120, 12.5), 10);
  // A scale-down counts them at the target: 4 ready carry 20 (0.4), the 2
  // starting 12.5 each: (20 + 25) / 6 / 12.5 = 0.6 → ⌈3.6⌉ = 4.
  EXPECT_EQ(HpaDesiredForMetric(6, 4, 20, 12.5), 4);
}

TEST(HpaTarget, IsTheMiddleOfTheRulesRange) {
  auto set = rules::ParseRules("5 < rate < 20, response < 800ms, 2 < active, instances < 9");
  ASSERT_TRUE(set.ok());
  EXPECT_DOUBLE_EQ(*HpaTarget(set.rules->rules[0]), 12.5);
  EXPECT_DOUBLE_EQ(*HpaTarget(set.rules->rules[1]), 0.4);
  EXPECT_FALSE(HpaTarget(set.rules->rules[2]).has_value()) << "a lower bound alone gives no target";
  EXPECT_FALSE(HpaTarget(set.rules->rules[3]).has_value());
}

class FixedMetrics : public MetricsSource {
 public:
  std::map<std::string, double> Averages(const std::string&, Duration, const std::vector<std::string>& b) override {
    // `total` req/s over the instances in service, like the collector.
    return {{"rate", b.empty() ? 0.0 : total / static_cast<double>(b.size())}};
  }
  double total = 0;
};

EndpointConfig Hpa(int min = 1, int max = 20) {
  EndpointConfig c;
  c.name = "web";
  c.scaling.policy = PolicyKind::kHpa;
  c.scaling.rules = "5 < rate < 20";  // target 12.5/instance
  c.scaling.min_instances = min;
  c.scaling.max_instances = max;
  return c;
}

std::vector<std::string> Backends(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("127.0.0.1:" + std::to_string(30000 + i));
  return out;
}

// A step from 20 to 100 req/s on 2 instances. The controller runs at t = 0,
// 15, 30 s; between runs nothing changes, whatever the load. At 15 s it
// wants ⌈2 × 50 / 12.5⌉ = 8 but may add only max(4, 100 %) = 4: 6. At 30 s,
// 100 on 6 is 16.7 each (ratio 1.33) → ⌈8.0⌉ = 8, within max(6 + 4, 12).
TEST(HpaRecommender, AStepIsFollowedAtTheSyncPeriodWithinTheUpRateLimit) {
  FakeClock clock;
  FixedMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Hpa();
  m.total = 20;  // 10 each, ratio 0.8 → ⌈1.6⌉ = 2
  EXPECT_EQ(p.Decide(cfg, 2, Backends(2)).target, 2);
  m.total = 100;
  for (int s = 1; s < 15; ++s) {
    clock.Advance(Duration(1000));
    EXPECT_EQ(p.Decide(cfg, 2, Backends(2)).target, 2) << "no sync at second " << s;
  }
  clock.Advance(Duration(1000));
  auto d = p.Decide(cfg, 2, Backends(2));
  EXPECT_EQ(d.target, 6) << d.explanation;
  EXPECT_NE(d.explanation.find("hpa: recommends 8"), std::string::npos) << d.explanation;
  EXPECT_NE(d.explanation.find("up rate-limited"), std::string::npos) << d.explanation;
  for (int s = 16; s < 30; ++s) {
    clock.Advance(Duration(1000));
    EXPECT_EQ(p.Decide(cfg, 6, Backends(6)).target, 6) << "second " << s;
  }
  clock.Advance(Duration(1000));
  EXPECT_EQ(p.Decide(cfg, 6, Backends(6)).target, 8);
}

// A spike seen by one sync only (t = 15 s) raises the count, and the
// scale-down that follows waits until that recommendation is older than
// 300 s: the highest recommendation of the window holds it.
TEST(HpaRecommender, ASpikeShorterThanTheStabilisationHoldsItsInstancesFor300s) {
  FakeClock clock;
  FixedMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Hpa();
  m.total = 20;
  EXPECT_EQ(p.Decide(cfg, 2, Backends(2)).target, 2);
  clock.Advance(Duration(15000));
  m.total = 60;  // 30 each: ratio 2.4 → ⌈4.8⌉ = 5, within the limit
  EXPECT_EQ(p.Decide(cfg, 2, Backends(2)).target, 5);
  m.total = 20;  // gone: 20 on 5 → ratio 0.32 → ⌈1.6⌉ = 2, held at 5
  for (int t = 30; t <= 315; t += 15) {
    clock.Advance(Duration(15000));
    auto d = p.Decide(cfg, 5, Backends(5));
    EXPECT_EQ(d.target, 5) << "t = " << t << " s: " << d.explanation;
    EXPECT_TRUE(d.held) << t;
  }
  clock.Advance(Duration(15000));  // t = 330 s: the 5 of t = 15 s is 315 s old
  auto d = p.Decide(cfg, 5, Backends(5));
  EXPECT_EQ(d.target, 2) << d.explanation;
  EXPECT_FALSE(d.held);
}

TEST(HpaRecommender, ScaleDownGoesStraightToTheStabilisedCount) {
  HpaRecommender hpa;
  TimePoint t0{Duration(1000000)};
  EXPECT_EQ(hpa.Next(t0, 10, 10, true, 1, 20).replicas, 10);
  EXPECT_EQ(hpa.Next(t0 + Duration(301000), 10, 2, true, 1, 20).replicas, 2) << "100 % per 15 s: no step limit";
  EXPECT_EQ(hpa.Next(t0 + Duration(316000), 2, 1, false, 1, 20).replicas, 2) << "a missing metric forbids it";
  EXPECT_EQ(hpa.Next(t0 + Duration(331000), 2, 40, true, 1, 20).replicas, 6) << "+ max(4, 100 %)";
  EXPECT_EQ(hpa.Next(t0 + Duration(346000), 6, 40, true, 1, 20).replicas, 12);
  EXPECT_EQ(hpa.Next(t0 + Duration(361000), 12, 40, true, 1, 20).replicas, 20) << "clamped to max";
}

}  // namespace
}  // namespace reactor
