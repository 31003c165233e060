// What the API shows of the agent's numbers, in the two forms it serves:
// Prometheus text (GET /metrics) and live samples for the event stream
// (the dashboard's charts). Implemented by AgentTelemetry (agent_telemetry.h).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace reactor {

class TelemetrySource {
 public:
  virtual ~TelemetrySource() = default;
  /// Every metric in the text exposition format 0.0.4.
  virtual std::string PrometheusText() = 0;
  /// {NAME: {"state","instances","healthy","draining","target","range",
  ///  "min","max","rate","bytes","errors","active","response","p50","p95","p99"}}
  /// for each of `endpoints` that exists (rates are the endpoint's totals/s,
  /// times in seconds). Thread-safe.
  virtual nlohmann::json Sample(const std::vector<std::string>& endpoints) = 0;
  /// [{"name","address","state","slots","slots_used","instances",...}] as /v1/managers.
  virtual nlohmann::json Managers() = 0;

  /// What the scaling rules of an endpoint see now: the instances in
  /// service and the per-instance averages (built-in and custom metrics).
  struct RuleInputs {
    int instances = 0;  // starting + active
    std::map<std::string, double> averages;
  };
  virtual std::optional<RuleInputs> Inputs(const std::string& endpoint) = 0;
};

}  // namespace reactor
