#include "agent/scaler/rules_policy.h"

#include <gtest/gtest.h>

#include "fake_clock.h"

namespace reactor {
namespace {

class FakeMetrics : public MetricsSource {
 public:
  std::map<std::string, double> Averages(const std::string&, Duration, const std::vector<std::string>& b) override {
    last_backends = b.size();
    return values;
  }
  std::map<std::string, double> values;
  size_t last_backends = 0;
};

EndpointConfig Config(const std::string& rules, int min, int max, Duration delay = Duration(30000)) {
  EndpointConfig c;
  c.name = "web";
  c.scaling.rules = rules;
  c.scaling.min_instances = min;
  c.scaling.max_instances = max;
  c.scaling.scale_down_delay = delay;
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

TEST(RulesPolicy, ScaleDownGoesOnlyAsLowAsTheHighestRecentTarget) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  auto cfg = Config("5 < rate < 20", 1, 10, Duration(10000));
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

}  // namespace
}  // namespace reactor
