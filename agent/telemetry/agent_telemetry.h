// The agent's numbers for /metrics and the dashboard, gathered at the time
// of asking from what the agent already keeps: endpoint records (registry),
// the reconciler's status, instance records and managers (store), nginx
// traffic (metrics collector, custom metrics), health reports, and the
// counters other modules bump (counter_registry.h).
//
// Metric names (Prometheus conventions, base units):
//   reactor_build_info{version}                          gauge 1
//   reactor_endpoint_requests_total{endpoint,code}       counter, code 1xx..5xx
//   reactor_endpoint_request_duration_seconds{endpoint}  histogram ($request_time)
//   reactor_endpoint_response_bytes_total{endpoint}      counter
//   reactor_endpoint_active_connections{endpoint}        gauge (to instances in service)
//   reactor_endpoint_instances{endpoint,state}           gauge, state starting|active|draining|errored
//   reactor_endpoint_desired_instances{endpoint}         gauge (the reconciler's target)
//   reactor_endpoint_min_instances / _max_instances{endpoint}
//   reactor_endpoint_rule_metric{endpoint,metric}        gauge: per-instance averages the rules see
//   reactor_endpoint_scale_events_total{endpoint,direction}  counter, up|down
//   reactor_endpoint_state{endpoint,state}               gauge 1 for the current state (invalid: the record does not
//   read) reactor_instance_up{endpoint,instance,manager}       gauge 1 active and healthy, else 0
//   reactor_health_checks_total{endpoint,result}         counter, success|failure
//   reactor_nginx_reloads_total{result}                  counter, ok|failed
//   reactor_store_errors_total                           counter
//   reactor_manager_slots{manager,kind}                  gauge, kind total|used
//   reactor_api_streams_open                             gauge (event streams and long polls)
//   scale to zero, from nginx's hold statistics (upstreams = dynamic):
//   reactor_endpoint_held_requests_total{endpoint,result} counter, served|timeout|rejected
//   reactor_endpoint_held_requests{endpoint}             gauge: held now
//   reactor_endpoint_wakeups_total{endpoint}             counter: holds opened (one wake each)
//   reactor_endpoint_hold_wait_seconds{endpoint}         histogram: how long held requests waited
// Label sets are bounded: endpoints by the registry, instances by each
// endpoint's max_instances, metrics by the rules and custom metric names.
//
// Thread-safety: the methods may be called from any thread (each source
// is thread-safe); every reference must outlive this object.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "agent/endpoint/endpoint_registry.h"
#include "agent/health/health_checker.h"
#include "agent/metrics/custom_metrics.h"
#include "agent/metrics/metrics_collector.h"
#include "agent/nginx/nginx_holds.h"
#include "agent/runtime/reconciler.h"
#include "agent/store/store.h"
#include "agent/telemetry/counter_registry.h"
#include "agent/telemetry/prometheus_text.h"
#include "agent/telemetry/telemetry_source.h"

namespace reactor {

class AgentTelemetry : public TelemetrySource {
 public:
  struct Sources {
    EndpointRegistry* registry = nullptr;
    Reconciler* reconciler = nullptr;
    Store* store = nullptr;
    MetricsCollector* collector = nullptr;
    CustomMetrics* custom = nullptr;
    HealthSource* health = nullptr;
    CounterRegistry* counters = nullptr;
    /// Open event streams (may be empty).
    std::function<int()> open_streams;
  };
  explicit AgentTelemetry(Sources sources) : s_(std::move(sources)) {}

  /// Where nginx's hold statistics come from (scale to zero); none = the
  /// hold families are left out. REQUIRES: before any other call.
  void SetHoldReport(std::function<Result<HoldReport>()> report) { hold_report_ = std::move(report); }

  std::string PrometheusText() override;
  nlohmann::json Sample(const std::vector<std::string>& endpoints) override;
  nlohmann::json Managers() override;
  std::optional<RuleInputs> Inputs(const std::string& endpoint) override;

 private:
  void HoldFamilies(const std::set<std::string>& endpoints, reactor::PrometheusText* out);

  Sources s_;
  std::function<Result<HoldReport>()> hold_report_;
};

}  // namespace reactor
