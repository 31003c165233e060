// The simulation model on traces whose outcome can be worked out by hand,
// and the trace reader's formats and errors.
#include "agent/simulate/simulation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "agent/simulate/simulation_report.h"
#include "agent/simulate/trace.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

Trace Steps(std::vector<std::pair<int, double>> runs) {
  Trace t;
  for (auto [seconds, load] : runs) {
    for (int i = 0; i < seconds; ++i) t.seconds.push_back({load, std::nullopt});
  }
  return t;
}

EndpointConfig Scaling(const std::string& rules, int min = 1, int max = 20) {
  EndpointConfig c;
  c.name = "web";
  c.scaling.rules = rules;
  c.scaling.min_instances = min;
  c.scaling.max_instances = max;
  return c;  // lean, 1s up, 5s window, 30s scale_down_delay, ramp 5, 22% headroom, no predict
}

SimulationResult Simulated(const Trace& t, const EndpointConfig& c, SimulationOptions o = {}) {
  auto r = Simulate(t, c, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : SimulationResult{};
}

// 10 req/s for 10 s, then 60 req/s. At the end of second 10 the last second
// says 60 on one instance: ⌈60 × 1.22 / 20⌉ = 4, so 3 launch; they serve from
// second 13 (2 s start delay after the round at t = 11 s). Seconds 10, 11
// and 12 are overloaded (60 on one instance of capacity 20), no other.
TEST(Simulation, StepIsOverloadedForTheStartDelayPlusTheRound) {
  auto r = Simulated(Steps({{10, 10}, {20, 60}}), Scaling("5 < rate < 20"));
  ASSERT_EQ(r.timeline.size(), 30u);
  EXPECT_EQ(r.summary.overload_seconds, 3);
  for (int s : {10, 11, 12}) EXPECT_TRUE(r.timeline[s].overload) << s;
  EXPECT_EQ(r.timeline[10].launched, 3);
  EXPECT_EQ(r.timeline[11].instances, 4);
  EXPECT_EQ(r.timeline[12].serving, 1);
  EXPECT_EQ(r.timeline[13].serving, 4);
  EXPECT_DOUBLE_EQ(r.timeline[13].rate, 15);
  EXPECT_EQ(r.summary.scale_ups, 1);
  EXPECT_EQ(r.summary.scale_downs, 0);
  EXPECT_EQ(r.summary.max_instances, 4);
  // 11 s × 1 + 19 s × 4 = 87 (the launches cost from the round on); the
  // oracle: 10 × 1 + 20 × 3 = 70.
  EXPECT_DOUBLE_EQ(r.summary.instance_seconds, 87);
  EXPECT_DOUBLE_EQ(r.summary.oracle_instance_seconds, 70);
  EXPECT_NEAR(r.summary.cost_ratio, 87.0 / 70.0, 1e-12);
}

// A fixed count (min = max = 3) on a ramp 0, 10, ..., 100: cost and the
// oracle are 3 per second; overload from load 60 (60 / 3 = 20 = capacity).
TEST(Simulation, RampCountsOverloadFromCapacityOn) {
  Trace t;
  for (int s = 0; s <= 10; ++s) t.seconds.push_back({10.0 * s, std::nullopt});
  auto r = Simulated(t, Scaling("5 < rate < 20", 3, 3));
  EXPECT_EQ(r.summary.seconds, 11);
  EXPECT_EQ(r.summary.overload_seconds, 5);
  EXPECT_FALSE(r.timeline[5].overload);
  EXPECT_TRUE(r.timeline[6].overload);
  EXPECT_DOUBLE_EQ(r.summary.instance_seconds, 33);
  EXPECT_DOUBLE_EQ(r.summary.oracle_instance_seconds, 33);
  EXPECT_EQ(r.summary.scale_ups, 0);
}

// A steep step under ramp_limit 2: at most 2 launches per round, until the
// count reaches ⌈200 × 1.22 / 20⌉ = 13.
TEST(Simulation, RampLimitBoundsLaunchesPerRound) {
  auto c = Scaling("5 < rate < 20");
  c.scaling.ramp_limit = 2;
  auto r = Simulated(Steps({{5, 10}, {20, 200}}), c);
  int total = 1;
  for (const auto& s : r.timeline) {
    EXPECT_LE(s.launched, 2) << s.second;
    total += s.launched - s.removed;
  }
  EXPECT_EQ(total, 13);
  EXPECT_EQ(r.timeline[5].launched, 2);
  EXPECT_EQ(r.summary.scale_ups, 6);
}

// One second of 100 req/s at second 40, shorter than the 2 s start delay:
// only that second is overloaded. It wants ⌈100 × 1.22 / 20⌉ = 7: the ramp
// limit launches 5, which come up after it. The last second's 7 (computed in
// the round at t = 41 s) holds them for 2 windows (10 s); then the whole
// step 6 → 1 is a burst's end (a step of 2 or more waits only that short
// hold), made in the round at the end of second 51.
TEST(Simulation, SpikeShorterThanStartDelayCostsButCannotBeServed) {
  auto r = Simulated(Steps({{40, 10}, {1, 100}, {59, 10}}), Scaling("5 < rate < 20"));
  EXPECT_EQ(r.summary.overload_seconds, 1);
  EXPECT_TRUE(r.timeline[40].overload);
  EXPECT_EQ(r.timeline[40].target, 7);
  EXPECT_EQ(r.timeline[40].launched, 5);
  EXPECT_EQ(r.timeline[43].serving, 6);
  EXPECT_TRUE(r.timeline[50].held);
  EXPECT_EQ(r.timeline[50].removed, 0);
  EXPECT_EQ(r.timeline[51].removed, 5);
  EXPECT_EQ(r.timeline[52].instances, 1);
  EXPECT_EQ(r.summary.scale_downs, 1);
  // The oracle runs 5 for the spike second only.
  EXPECT_DOUBLE_EQ(r.summary.oracle_instance_seconds, 99 + 5);
  EXPECT_DOUBLE_EQ(r.summary.instance_seconds, 41 + 11 * 6 + 48);
}

// A steady load with noise (mean 104 req/s, one second in ten at 125)
// settles after the first minute: no launch or removal afterwards (lean's
// hysteresis), and never an overloaded second after the start. It settles
// at 8, not at ⌈104 × 1.22 / 20⌉ = 7: at 7 the second at 125 triggers
// (⌈125 × 1.14 / 20⌉ = 8), and a step back to a count the last second found
// too small waits 10 × scale_down_delay, which the next 125 always renews.
TEST(Simulation, LeanSettlesOnASteadyNoisyLoad) {
  Trace t;
  const double noisy[] = {100, 112, 95, 125, 88, 104, 99, 118, 92, 107};
  for (int s = 0; s < 600; ++s) t.seconds.push_back({noisy[s % 10], std::nullopt});
  auto r = Simulated(t, Scaling("5 < rate < 20"));
  int events = 0;
  int overloaded = 0;
  for (size_t s = 60; s < r.timeline.size(); ++s) {
    events += r.timeline[s].launched + r.timeline[s].removed;
    overloaded += r.timeline[s].overload;
  }
  EXPECT_EQ(overloaded, 0);
  EXPECT_EQ(events, 0) << "scale_ups " << r.summary.scale_ups << ", scale_downs " << r.summary.scale_downs;
  EXPECT_EQ(r.timeline.back().instances, 8);
}

// Reactor's policy stays anywhere in the range: after the step it goes only
// to the range's nearest edge on the 5 s window, and never steps down inside it.
TEST(Simulation, ReactorPolicyStaysInsideTheRange) {
  auto c = Scaling("5 < rate < 20");
  c.scaling.policy = PolicyKind::kReactor;
  auto r = Simulated(Steps({{10, 10}, {60, 60}, {60, 30}}), c);
  // End of second 10: 5 s average 20 total on 1 → range [2, 3] → 2.
  EXPECT_EQ(r.timeline[10].launched, 1);
  EXPECT_GT(r.summary.overload_seconds, 3);
  // 30 req/s on 4 instances is 7.5 each: inside [2, 5], so 4 stay.
  EXPECT_EQ(r.timeline.back().instances, 4);
}

TEST(Simulation, ResponseFollowsTheQueueingModel) {
  SimulationOptions o;
  o.base_response = 0.1;
  o.initial = 2;
  auto r = Simulated(Steps({{1, 20}, {1, 39}, {1, 0}}), Scaling("", 2, 2), o);
  ASSERT_TRUE(r.timeline[0].response.has_value());
  EXPECT_NEAR(*r.timeline[0].response, 0.1 / (1 - 0.5), 1e-12);
  EXPECT_NEAR(*r.timeline[1].response, 0.1 * 20, 1e-12) << "capped at 20 × base from ρ = 0.95";
  EXPECT_FALSE(r.timeline[2].response.has_value()) << "nothing served, nothing timed";
}

TEST(Simulation, ResponseRulesScaleOnTheModel) {
  SimulationOptions o;
  o.base_response = 0.1;
  // 30 req/s on 2: ρ = 0.75, response 0.4 s > 300ms → scale up.
  auto r = Simulated(Steps({{20, 30}}), Scaling("response < 300ms", 2, 10), o);
  EXPECT_GT(r.timeline.back().instances, 2);
  EXPECT_LT(*r.timeline.back().response, 0.3);
}

TEST(Simulation, ReportsMetricsTheModelLacks) {
  auto r = Simulated(Steps({{5, 10}}), Scaling("errors < 1, queue < 5, rate < 20"));
  EXPECT_EQ(r.unmodelled_metrics, (std::vector<std::string>{"errors", "queue"}));
}

TEST(Simulation, RefusesBadOptions) {
  SimulationOptions o;
  o.capacity = 0;
  EXPECT_FALSE(Simulate(Steps({{1, 1}}), Scaling("rate < 20"), o).ok());
  EXPECT_FALSE(Simulate(Trace{}, Scaling("rate < 20"), {}).ok());
}

TEST(SimulationReport, JsonHasTheSummaryKeysInOrder) {
  auto r = Simulated(Steps({{10, 10}, {20, 60}}), Scaling("5 < rate < 20"));
  EXPECT_EQ(SummaryJson(r.summary),
            "{\"seconds\":30,\"overload_seconds\":3,\"instance_seconds\":87,\"oracle_instance_seconds\":70,"
            "\"cost_ratio\":1.2429,\"scale_ups\":1,\"scale_downs\":0,\"max_instances\":4}");
}

TEST(SimulationReport, CsvHasOneLinePerSecondAndSvgIsAChart) {
  auto r = Simulated(Steps({{10, 10}, {20, 60}}), Scaling("5 < rate < 20"));
  std::string csv = TimelineCsv(r);
  EXPECT_THAT(csv, HasSubstr("second,load,instances,serving,capacity,rate,response,overload,oracle,target,"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 31);
  EXPECT_THAT(csv, HasSubstr("\n10,60,1,1,20,60,1,1,3,4,3,0,0\n"));
  std::string svg = TimelineSvg({{"5 < rate < 20", &r}}, 20);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_THAT(svg, HasSubstr("5 &lt; rate &lt; 20: 10.00% overload"));
  EXPECT_THAT(svg, HasSubstr("</svg>"));
}

// --- traces ---------------------------------------------------------------------

TEST(Trace, ReadsCsvWithHeaderGapsAndComments) {
  auto t = ParseTrace("second,requests\n# warm-up\n100,5\n101,7.5\n\n104,2\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, Trace::Format::kCsv);
  EXPECT_EQ(t->first_second, 100);
  ASSERT_EQ(t->seconds.size(), 5u);
  EXPECT_EQ(t->seconds[1].requests, 7.5);
  EXPECT_EQ(t->seconds[2].requests, 0) << "a missing second had no requests";
  EXPECT_EQ(t->seconds[4].requests, 2);
}

TEST(Trace, BadCsvNamesTheLine) {
  auto msg = [](const std::string& text) {
    auto t = ParseTrace(text);
    return t.ok() ? std::string("<ok>") : t.status().message();
  };
  EXPECT_EQ(msg("0,1\n1,-2\n"), "line 2: requests '-2' is not a number >= 0");
  EXPECT_EQ(msg("0,1\n-1,2\n"), "line 2: second '-1' is not a whole number >= 0");
  EXPECT_EQ(msg("second,requests\n5,1\n5,2\n"), "line 3: second 5 does not follow 5 (seconds must ascend)");
  EXPECT_EQ(msg("0,1\n1,2,3\n"), "line 2: expected `second,requests`, got '1,2,3'");
  EXPECT_EQ(msg("0,1\n1,x\n"), "line 2: requests 'x' is not a number >= 0");
  EXPECT_EQ(msg(""), "empty trace: no data lines");
  EXPECT_EQ(msg("second,requests\n"), "empty trace: no `second,requests` lines");
  EXPECT_THAT(msg("\n{\"json\": true}\n"), HasSubstr("line 2: unknown trace format"));
}

TEST(Trace, ReadsTheAgentsAccessLogPerSecondWithResponseTimes) {
  auto t = ParseTrace(
      "1700000000.100|reactor_web|200|612|0.005|127.0.0.1:30001|200|0.004\n"
      "1700000000.900|reactor_web|200|612|0.007|127.0.0.1:30002|200|0.006\n"
      "1700000002.500|reactor_web|200|612|0.003|127.0.0.1:30001|200|0.002\n"
      "1700000002.600|-|503|100|0.000|-|-|-\n"
      "1700000002.700|reactor_api|200|612|0.003|127.0.0.1:30009|200|0.010\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, Trace::Format::kAccessLog);
  EXPECT_EQ(t->first_second, 1700000000);
  ASSERT_EQ(t->seconds.size(), 3u);
  EXPECT_EQ(t->seconds[0].requests, 2);
  EXPECT_NEAR(*t->seconds[0].response, 0.005, 1e-12);
  EXPECT_EQ(t->seconds[1].requests, 0);
  EXPECT_EQ(t->seconds[2].requests, 2);
  EXPECT_EQ(t->skipped_lines, 1u) << "nginx's own 503 is of no endpoint";

  auto only = ParseTrace(
      "1700000000.100|reactor_web|200|612|0.005|127.0.0.1:30001|200|0.004\n"
      "1700000000.700|reactor_api|200|612|0.003|127.0.0.1:30009|200|0.010\n",
      "web");
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->seconds[0].requests, 1);
  EXPECT_EQ(only->skipped_lines, 1u);
}

TEST(Trace, MalformedAccessLogLineNamesTheLine) {
  auto t = ParseTrace(
      "1700000000.100|reactor_web|200|612|0.005|127.0.0.1:30001|200|0.004\n"
      "1700000000.200|reactor_web|banana\n");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("line 2: not a line of the agent's access-log format"));
}

}  // namespace
}  // namespace reactor
