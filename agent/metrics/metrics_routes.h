// The metrics part of the REST API (SPEC §10), registered through ApiRoutes
// after the server's own routes, so the bearer-token check applies:
//
//   GET  /v1/endpoints/NAME/metrics[?instances=1]
//     200 {"endpoint": NAME, "window_s": W, "instances": n,
//          "metrics": {built-in averages + unexpired custom metrics},
//          "unparsed": N, "log": "" or why the access log cannot be read,
//          "backends": {ADDR: {"hits","bytes","errors","response_sum","rate",
//                              "response","active","in_service"}}   (only with instances=1)}
//     404 unknown endpoint.
//   POST /v1/endpoints/NAME/metrics  {"metrics": {"name": value, ...}, "ttl": "30s"}
//     200 {"endpoint": NAME, "metrics": [names], "ttl_s": T}; 400 on any bad
//     name, value or ttl (nothing is stored then); 404 unknown endpoint.
//
// W is the endpoint's [scaling] window. Handlers run on httplib's threads.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agent/api/api_server.h"
#include "agent/metrics/cluster_traffic.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/metrics/custom_metrics.h"
#include "agent/metrics/metrics_collector.h"
#include "agent/store/store.h"

namespace reactor {

class MetricsRoutes : public ApiRoutes {
 public:
  /// The addresses ("ip:port") of an endpoint's instances in service.
  using InstancesInService = std::function<std::vector<std::string>(const std::string& endpoint)>;

  /// Every reference must outlive the server the routes are registered on.
  MetricsRoutes(MetricsCollector& collector, CustomMetrics& custom, EndpointRegistry& registry, Store& store,
                InstancesInService instances);

  /// GET answers with every host's traffic (ClusterTraffic) instead of this
  /// host's log alone; "unparsed" and "log" stay this host's. Call before
  /// Register. `cluster` must outlive the routes.
  void UseClusterTraffic(ClusterTraffic* cluster) { cluster_ = cluster; }

  void Register(httplib::Server& server) override;

 private:
  MetricsCollector& collector_;
  CustomMetrics& custom_;
  EndpointRegistry& registry_;
  [[maybe_unused]] Store& store_;  // reserved: per-host counters for the cluster (SPEC §13)
  InstancesInService instances_;
  ClusterTraffic* cluster_ = nullptr;
};

}  // namespace reactor
