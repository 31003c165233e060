// The metrics `reactor simulate` feeds the scaling policy: what the agent's
// collector (agent/metrics/metrics_collector.h) would report for the
// modelled traffic. The simulation records each second's offered load and
// the instances that served it; Averages answers the policy's question for
// the window ending at the clock's Now(), as the collector does early in a
// second: the last W whole seconds, divided by W (by the seconds recorded,
// when fewer), per instance in service.
//
// Metrics (every one per instance in service, as SPEC §5 defines them):
//   rate      requests/s
//   response  mean response time, s, over the requests that were served,
//             from the model (simulation.h): base / (1 − ρ), capped
//   response.p50/.p95/.p99  an exponential sojourn time (M/M/1):
//             mean × ln 2, ln 20, ln 100
//   active    open connections: Little's law, rate × response
// bytes and errors are not modelled: rules on them (and on custom metrics)
// see no value and are skipped, as the agent skips a metric it lacks.
//
// Not thread-safe: one simulation, one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/scaler/rules_policy.h"

namespace reactor {

class ModelMetrics : public MetricsSource {
 public:
  /// `origin` is when second 0 starts on `clock`, which must outlive this.
  ModelMetrics(Clock& clock, TimePoint origin) : clock_(clock), origin_(origin) {}

  /// Records second `second` (0, 1, 2, ... in order): `requests` offered,
  /// `response` the mean response time of those served (nullopt: none was).
  void Record(int64_t second, double requests, std::optional<double> response);

  std::map<std::string, double> Averages(const std::string& endpoint, Duration window,
                                         const std::vector<std::string>& backends) override;

  /// The names Averages gives values for.
  static const std::vector<std::string>& Provided();

 private:
  struct Second {
    double requests = 0;
    double response_sum = 0;  // response × requests served
    double served = 0;
  };
  Clock& clock_;
  TimePoint origin_;
  std::vector<Second> seconds_;
};

}  // namespace reactor
