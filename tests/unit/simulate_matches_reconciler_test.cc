// One engine, two drivers: the live reconciler (with fakes for the cloud,
// nginx and health, a real in-memory store and a stepped clock) and
// `reactor simulate` make the same scaling decisions for the same
// per-second load, because both drive the same RulesPolicy and ramp limit.
//
// The fake world follows the simulation's model: an instance launched in a
// round passes its health check `start delay` later, and the policy's
// metrics come from the same ModelMetrics the simulation uses, fed with the
// load of each second before the round at its end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>

#include "agent/endpoint/endpoint_parser.h"
#include "agent/runtime/reconciler.h"
#include "agent/scaler/rules_policy.h"
#include "agent/simulate/model_metrics.h"
#include "agent/simulate/simulation.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "reconciler_fakes.h"

namespace reactor {
namespace {

constexpr Duration kStartDelay(2000);

// An instance passes its health check kStartDelay after it was first checked
// (the round that launched it).
class StartDelayHealth : public HealthSource {
 public:
  explicit StartDelayHealth(Clock& clock) : clock_(clock) {}
  void SetTargets(const std::vector<HealthTarget>& t) override {
    targets_ = t;
    for (const auto& target : t) first_seen_.emplace(target.id, clock_.Now());
  }
  std::map<std::string, HealthReport> Snapshot() const override {
    std::map<std::string, HealthReport> out;
    for (const auto& t : targets_) {
      HealthReport r;
      bool up = clock_.Now() - first_seen_.at(t.id) >= kStartDelay;
      r.state = up ? HealthState::kHealthy : HealthState::kPending;
      r.consecutive_successes = up ? 1 : 0;
      r.last_result = up ? "HTTP 200" : "connection refused";
      out[t.id] = r;
    }
    return out;
  }

 private:
  Clock& clock_;
  std::vector<HealthTarget> targets_;
  std::map<std::string, TimePoint> first_seen_;
};

// The simulation starts with its first instance already serving; the live
// agent has to launch it. Until `start` this policy holds one instance, so
// the RulesPolicy behind it sees its first round when the simulation's does.
class WarmUpThen : public ScalingPolicy {
 public:
  WarmUpThen(ScalingPolicy& next, Clock& clock, TimePoint start) : next_(next), clock_(clock), start_(start) {}
  Decision Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>& active) override {
    if (clock_.Now() < start_) {
      Decision d;
      d.target = 1;
      return d;
    }
    return next_.Decide(cfg, current, active);
  }

 private:
  ScalingPolicy& next_;
  Clock& clock_;
  TimePoint start_;
};

// A deterministic bursty load: a wandering base with bursts of 2-4x.
Trace BurstyTrace(int seconds, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Trace t;
  double base = 60, burst = 0;
  int burst_left = 0;
  for (int s = 0; s < seconds; ++s) {
    base = std::clamp(base + (u(rng) - 0.5) * 6, 20.0, 120.0);
    if (burst_left == 0 && u(rng) < 0.02) {
      burst_left = 10 + static_cast<int>(u(rng) * 30);
      burst = base * (1 + u(rng) * 3);
    }
    double load = base + (burst_left > 0 ? burst : 0);
    if (burst_left > 0) burst_left--;
    t.seconds.push_back({std::round(load * (0.9 + 0.2 * u(rng))), std::nullopt});
  }
  return t;
}

struct Round {
  int target = 0;
  int live = 0;  // starting + active after the round's launches and drains
  bool operator==(const Round& o) const { return target == o.target && live == o.live; }
};

std::ostream& operator<<(std::ostream& os, const Round& r) {
  return os << "{target " << r.target << ", live " << r.live << "}";
}

class SimulateMatchesReconciler : public ::testing::TestWithParam<std::string> {};

TEST_P(SimulateMatchesReconciler, SameDecisionsForTheSameLoad) {
  const std::string ini =
      "[endpoint]\nurl = http://127.0.0.1:18080/\ncloud = process\n[scaling]\nmin_instances = 1\n"
      "max_instances = 20\nrules = 5 < rate < 20\nramp_limit = 3\nwindow = 5s\nscale_down_delay = 20s\n"
      "policy = " +
      GetParam() + "\n[health]\nrise = 1\n[cloud:process]\ncommand = /bin/true\nslots = 1\n";
  const Trace trace = BurstyTrace(600, 7);

  // Driver 1: reactor simulate.
  auto cfg = ParseEndpointIni("web", ini);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  SimulationOptions so;
  so.capacity = 20;
  so.start_delay = kStartDelay;
  so.initial = 1;
  auto sim = Simulate(trace, *cfg, so);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  std::vector<Round> simulated;
  int scale_events = 0;
  for (const auto& s : sim->timeline) {
    simulated.push_back({s.target, s.instances + s.launched - s.removed});
    scale_events += s.launched > 0 || s.removed > 0;
  }
  ASSERT_GT(scale_events, 10) << "the trace must make the policy work";

  // Driver 2: the agent's reconciler, one round a second.
  FakeClock clock;
  auto store = std::move(SqliteStore::Open(":memory:", clock)).value();
  EventLog events(*store, clock);
  EndpointRegistry registry(*store, nullptr);
  ASSERT_TRUE(registry.Put("web", ini, "api").ok());
  FakeCloud cloud;
  FakeNginx nginx;
  StartDelayHealth health(clock);
  const TimePoint origin = clock.Now() + Duration(3000);  // second 0 of the trace starts here
  ModelMetrics metrics(clock, origin);
  RulesPolicy rules_policy(metrics, clock);
  WarmUpThen policy(rules_policy, clock, origin + Duration(1000));
  ReconcilerOptions o;
  o.manager = "m1";
  o.min_drain = Duration(1000);
  Reconciler reconciler(o, *store, events, nginx, health, std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &cloud}},
                        policy, clock, [](const std::string&) { return 0; });
  // Warm-up: the first instance launches at origin − start delay, serving at second 0.
  clock.Advance(Duration(1000));
  ASSERT_TRUE(reconciler.RunOnce().ok());
  clock.Advance(Duration(2000));
  ASSERT_TRUE(reconciler.RunOnce().ok());
  ASSERT_EQ(clock.Now(), origin);
  ASSERT_EQ(reconciler.GetStatus("web")->healthy, 1);

  std::vector<Round> live;
  for (size_t s = 0; s < trace.seconds.size(); ++s) {
    metrics.Record(static_cast<int64_t>(s), trace.seconds[s].requests, std::nullopt);
    clock.Advance(Duration(1000));
    ASSERT_TRUE(reconciler.RunOnce().ok());
    auto st = reconciler.GetStatus("web");
    ASSERT_TRUE(st.has_value());
    live.push_back({st->target, st->instances});
  }
  ASSERT_EQ(live.size(), simulated.size());
  for (size_t s = 0; s < live.size(); ++s) {
    ASSERT_EQ(live[s], simulated[s]) << "round at the end of second " << s << " (load " << trace.seconds[s].requests
                                     << ")";
  }
  int sim_launches = 1;  // the warm-up instance
  for (const auto& s : sim->timeline) sim_launches += s.launched;
  EXPECT_EQ(cloud.launches, sim_launches);
}

INSTANTIATE_TEST_SUITE_P(Policies, SimulateMatchesReconciler, ::testing::Values("lean", "reactor"));

}  // namespace
}  // namespace reactor
