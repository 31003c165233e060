#include "agent/simulate/simulation.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "agent/scaler/rules_policy.h"
#include "agent/simulate/model_metrics.h"
#include "agent/simulate/simulated_clock.h"
#include "rules/rules.h"

namespace reactor {
namespace {

constexpr double kResponseCapFactor = 20;  // = 1 / (1 − 0.95)

struct Instance {
  int64_t id = 0;
  int64_t launch_ms = 0;  // relative to second 0
};

int OracleCount(double load, double capacity, int min, int max) {
  double need = std::ceil(load / capacity - 1e-9);
  return static_cast<int>(std::clamp<double>(need, min, std::max(min, max)));
}

}  // namespace

Result<SimulationResult> Simulate(const Trace& trace, const EndpointConfig& cfg, const SimulationOptions& options) {
  if (!(options.capacity > 0) || !std::isfinite(options.capacity)) {
    return Status::InvalidArgument("capacity must be a number > 0");
  }
  if (options.start_delay.count() < 0) return Status::InvalidArgument("start delay must not be negative");
  if (!(options.base_response >= 0) || !std::isfinite(options.base_response)) {
    return Status::InvalidArgument("base response time must not be negative");
  }
  const int min = cfg.scaling.min_instances;
  const int max = std::max(min, cfg.scaling.max_instances);
  auto parsed = rules::ParseRules(cfg.scaling.rules);
  if (!parsed.ok()) return Status::InvalidArgument("rules: " + parsed.error->Format());
  if (trace.seconds.empty()) return Status::InvalidArgument("empty trace");

  SimulationResult result;
  for (const auto& r : parsed.rules->rules) {
    const auto& provided = ModelMetrics::Provided();
    if (r.metric != "instances" && std::find(provided.begin(), provided.end(), r.metric) == provided.end() &&
        std::find(result.unmodelled_metrics.begin(), result.unmodelled_metrics.end(), r.metric) ==
            result.unmodelled_metrics.end()) {
      result.unmodelled_metrics.push_back(r.metric);
    }
  }

  const TimePoint origin(Duration(1000000));
  SimulatedClock clock(origin, trace.first_second * 1000);
  ModelMetrics metrics(clock, origin);
  RulesPolicy policy(metrics, clock);  // the agent's policy, unchanged

  const int64_t delay_ms = options.start_delay.count();
  const int initial =
      options.initial ? *options.initial : OracleCount(trace.seconds[0].requests, options.capacity, min, max);
  if (initial < 0) return Status::InvalidArgument("initial instances must not be negative");
  std::deque<Instance> live;  // launch order
  int64_t next_id = 0;
  for (int i = 0; i < initial; ++i) live.push_back({next_id++, -delay_ms});

  auto serving_at = [&](int64_t ms) {
    int n = 0;
    for (const auto& in : live) n += in.launch_ms + delay_ms <= ms;
    return n;
  };

  SimulationSummary& sum = result.summary;
  result.timeline.reserve(trace.seconds.size());
  for (size_t i = 0; i < trace.seconds.size(); ++i) {
    const int64_t s = static_cast<int64_t>(i);
    SimulatedSecond row;
    row.second = s;
    row.load = trace.seconds[i].requests;
    row.instances = static_cast<int>(live.size());
    row.serving = serving_at(s * 1000);
    row.capacity = row.serving * options.capacity;
    row.rate = row.serving > 0 ? row.load / row.serving : row.load;
    row.overload = row.load > 0 && (row.serving == 0 || row.rate >= options.capacity);
    if (row.serving > 0 && row.load > 0) {
      const double rho = row.load / row.capacity;
      const double cap = options.base_response * kResponseCapFactor;
      row.response = rho >= 1 ? cap : std::min(cap, options.base_response / (1 - rho));
    }
    row.oracle = OracleCount(row.load, options.capacity, min, max);
    metrics.Record(s, row.load, row.response);

    // The round at the end of the second.
    const int64_t now_ms = (s + 1) * 1000;
    clock.Set(origin + Duration(now_ms));
    std::vector<std::string> active;
    for (const auto& in : live) {
      if (in.launch_ms + delay_ms <= now_ms) active.push_back("sim:" + std::to_string(in.id));
    }
    const int current = static_cast<int>(live.size());
    ScalingPolicy::Decision d = policy.Decide(cfg, current, active);
    row.target = d.target;
    row.held = d.held;
    const int step = RampLimitedStep(current, d.target, cfg.scaling.ramp_limit);
    if (step > 0) {
      for (int k = 0; k < step; ++k) live.push_back({next_id++, now_ms});
      row.launched = step;
      sum.scale_ups++;
    } else if (step < 0) {
      for (int k = 0; k < -step; ++k) {
        // The oldest starting instance, else the newest serving one.
        auto starting = std::find_if(live.begin(), live.end(),
                                     [&](const Instance& in) { return in.launch_ms + delay_ms > now_ms; });
        if (starting != live.end()) {
          live.erase(starting);
        } else {
          live.pop_back();
        }
      }
      row.removed = -step;
      sum.scale_downs++;
    }

    sum.seconds++;
    sum.overload_seconds += row.overload;
    sum.instance_seconds += row.instances;
    sum.oracle_instance_seconds += row.oracle;
    sum.max_instances = std::max(sum.max_instances, row.instances);
    result.timeline.push_back(row);
  }
  sum.cost_ratio = sum.oracle_instance_seconds > 0 ? sum.instance_seconds / sum.oracle_instance_seconds : 0;
  return result;
}

}  // namespace reactor
