// Scale to zero in the policy: idle_timeout takes an endpoint with
// min_instances = 0 to zero; requests nginx holds wake it (scale_to_zero.h,
// rules_policy.h).
#include <gtest/gtest.h>

#include "agent/scaler/rules_policy.h"
#include "agent/scaler/scale_to_zero.h"
#include "fake_clock.h"

namespace reactor {
namespace {

class FakeMetrics : public MetricsSource {
 public:
  std::map<std::string, double> Averages(const std::string&, Duration, const std::vector<std::string>&) override {
    return values;
  }
  std::map<std::string, double> values = {{"rate", 0}, {"active", 0}};
};

class FakeWakes : public WakeSource {
 public:
  WakeDemand Demand(const std::string& endpoint) override {
    ++asked;
    auto it = demand.find(endpoint);
    return it == demand.end() ? WakeDemand{} : it->second;
  }
  std::map<std::string, WakeDemand> demand;
  int asked = 0;
};

EndpointConfig Config(const std::string& rules, int min, int max, Duration idle) {
  EndpointConfig c;
  c.name = "web";
  c.scaling.rules = rules;
  c.scaling.min_instances = min;
  c.scaling.max_instances = max;
  c.scaling.idle_timeout = idle;
  c.scaling.scale_down_delay = Duration(30000);
  return c;
}

std::vector<std::string> Backends(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("127.0.0.1:" + std::to_string(30000 + i));
  return out;
}

TEST(ScaleToZero, KeepsOneInstanceUntilIdleTimeoutThenGoesToZeroWithoutScaleDownDelay) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  const EndpointConfig cfg = Config("5 < rate < 20", 0, 4, Duration(10000));
  m.values["rate"] = 3;  // busy: one instance is in range
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1);
  m.values["rate"] = 0;
  for (int s = 1; s < 10; ++s) {
    clock.Advance(Duration(1000));
    auto d = p.Decide(cfg, 1, Backends(1));
    EXPECT_EQ(d.target, 1) << "second " << s << ": " << d.explanation;
    EXPECT_FALSE(d.idle);
  }
  clock.Advance(Duration(1000));
  auto d = p.Decide(cfg, 1, Backends(1));
  EXPECT_EQ(d.target, 0) << d.explanation;
  EXPECT_TRUE(d.idle);
  EXPECT_NE(d.explanation.find("no request for idle_timeout 10s: scaling to zero"), std::string::npos) << d.explanation;
  // At zero with nothing held it stays there, quietly.
  clock.Advance(Duration(1000));
  d = p.Decide(cfg, 0, {});
  EXPECT_EQ(d.target, 0);
  EXPECT_TRUE(d.explanation.empty()) << d.explanation;
}

TEST(ScaleToZero, OpenConnectionsCountAsActivity) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  const EndpointConfig cfg = Config("", 0, 2, Duration(5000));
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1);
  m.values["active"] = 1;  // a slow download, no new request
  clock.Advance(Duration(6000));
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1);
  m.values["active"] = 0;
  clock.Advance(Duration(4999));
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1);
  clock.Advance(Duration(1));
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 0);
}

TEST(ScaleToZero, WithoutIdleTimeoutAnEndpointWithInstancesKeepsOne) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  const EndpointConfig cfg = Config("5 < rate < 20", 0, 4, Duration(0));
  for (int s = 0; s < 100; ++s) {
    EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1) << "second " << s;
    clock.Advance(Duration(1000));
  }
  // Scale-down from more goes to one, not zero.
  EXPECT_EQ(p.Decide(cfg, 3, Backends(3)).target, 1);
}

TEST(ScaleToZero, RulesWhoseRangeExcludesZeroKeepTheInstance) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  const EndpointConfig cfg = Config("1 <= instances", 0, 4, Duration(2000));
  for (int s = 0; s < 10; ++s) {
    EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1) << "second " << s;
    clock.Advance(Duration(1000));
  }
}

TEST(ScaleToZero, MinInstancesAboveZeroIgnoresIdleTimeout) {
  FakeClock clock;
  FakeMetrics m;
  RulesPolicy p(m, clock);
  const EndpointConfig cfg = Config("", 1, 4, Duration(1000));
  for (int s = 0; s < 5; ++s) {
    EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1);
    clock.Advance(Duration(1000));
  }
}

TEST(ScaleToZero, HeldRequestsWakeAnEndpointAtZeroOnce) {
  FakeClock clock;
  FakeMetrics m;
  FakeWakes w;
  RulesPolicy p(m, clock, &w);
  const EndpointConfig cfg = Config("5 < rate < 20", 0, 4, Duration(10000));
  EXPECT_EQ(p.Decide(cfg, 0, {}).target, 0);
  w.demand["web"] = WakeDemand{3, clock.WallMillis()};
  auto d = p.Decide(cfg, 0, {});
  EXPECT_EQ(d.target, 1);
  EXPECT_EQ(d.held_requests, 3);
  EXPECT_NE(d.explanation.find("woken by 3 held requests → target 1 (min 0, max 4)"), std::string::npos)
      << d.explanation;
  // Starting: the same demand keeps the target, and says nothing more.
  clock.Advance(Duration(250));
  d = p.Decide(cfg, 1, {});
  EXPECT_EQ(d.target, 1);
  EXPECT_TRUE(d.explanation.empty()) << d.explanation;
  // In service: held requests are no longer asked for; the rules decide.
  const int asked = w.asked;
  m.values["rate"] = 4;
  d = p.Decide(cfg, 1, Backends(1));
  EXPECT_EQ(d.target, 1);
  EXPECT_EQ(w.asked, asked);
}

TEST(ScaleToZero, ABurstOfHeldRequestsStartsAsManyAsTheRulesWant) {
  FakeClock clock;
  FakeMetrics m;
  FakeWakes w;
  RulesPolicy p(m, clock, &w);
  const EndpointConfig cfg = Config("5 < rate < 20", 0, 20, Duration(10000));
  w.demand["web"] = WakeDemand{200, clock.WallMillis()};  // 200 within the last second: 200 req/s
  auto d = p.Decide(cfg, 0, {});
  EXPECT_EQ(d.target, 11) << d.explanation;  // ceil(200 / 20) = 10, an exact multiple of a strict upper: 11
  // The burst grew while the first instances start: more, said as such.
  clock.Advance(Duration(250));
  w.demand["web"] = WakeDemand{400, clock.WallMillis() - 250};
  d = p.Decide(cfg, 11, {});
  EXPECT_EQ(d.target, 20);
  EXPECT_NE(d.explanation.find("400 held requests waiting → target 20"), std::string::npos) << d.explanation;
  // max_instances bounds it; max 0 cannot wake at all.
  EXPECT_EQ(p.Decide(Config("5 < rate < 20", 0, 3, Duration(0)), 0, {}).target, 3);
  EXPECT_EQ(p.Decide(Config("5 < rate < 20", 0, 0, Duration(0)), 0, {}).target, 0);
}

TEST(ScaleToZero, HeldRequestsDelayIdleTimeout) {
  FakeClock clock;
  FakeMetrics m;
  FakeWakes w;
  RulesPolicy p(m, clock, &w);
  const EndpointConfig cfg = Config("", 0, 1, Duration(3000));
  EXPECT_EQ(p.Decide(cfg, 1, {}).target, 1);
  w.demand["web"] = WakeDemand{1, clock.WallMillis()};
  clock.Advance(Duration(2500));
  EXPECT_EQ(p.Decide(cfg, 1, {}).target, 1);  // starting with a request held: busy now
  w.demand.clear();
  clock.Advance(Duration(2999));
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 1);
  clock.Advance(Duration(1));
  EXPECT_EQ(p.Decide(cfg, 1, Backends(1)).target, 0);
}

TEST(ScaleToZero, WakeTargetFollowsTheRules) {
  auto set = [](const std::string& text) { return *rules::ParseRules(text).rules; };
  EXPECT_EQ(WakeTarget(set(""), 500, 0, 0, 10), 1) << "no rules: one instance";
  EXPECT_EQ(WakeTarget(set("rate < 20"), 50, 0, 0, 10), 3);
  EXPECT_EQ(WakeTarget(set("rate < 20"), 50, 5, 0, 10), 1) << "50 over 5 s is 10 req/s";
  EXPECT_EQ(WakeTarget(set("active < 10"), 35, 0, 0, 10), 4);
  EXPECT_EQ(WakeTarget(set("response < 200ms"), 1000, 0, 0, 10), 1) << "no value for response: skipped";
  EXPECT_EQ(WakeTarget(set("rate < 1"), 1000, 0, 2, 5), 5);
  EXPECT_EQ(WakeTarget(set(""), 1, 0, 2, 5), 2) << "at least min_instances";
  EXPECT_EQ(WakeTarget(set(""), 1, 0, 0, 0), 0) << "max 0 cannot scale";
  EXPECT_EQ(WakeTarget(set(""), 0, 0, 0, 5), 0) << "nothing held";
}

TEST(ScaleToZero, StatusPhase) {
  EXPECT_STREQ(ZeroPhase(0, true, 0, 0, 0), "scaled to zero");
  EXPECT_STREQ(ZeroPhase(0, true, 1, 0, 1), "waking");
  EXPECT_STREQ(ZeroPhase(0, true, 0, 0, 1), "waking");
  EXPECT_STREQ(ZeroPhase(0, true, 1, 1, 1), "");
  EXPECT_STREQ(ZeroPhase(0, false, 0, 0, 0), "") << "stopped is not scaled to zero";
  EXPECT_STREQ(ZeroPhase(1, true, 0, 0, 1), "") << "only endpoints that may scale to zero";
}

}  // namespace
}  // namespace reactor
