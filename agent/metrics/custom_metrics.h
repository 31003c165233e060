// Custom metrics pushed through the API (SPEC §5): an application or a
// monitoring job reports, say, `queue_depth = 42` for an endpoint and rules
// can use it like a built-in metric. Each is kept in the Store at
// CustomMetricKey(endpoint, metric) as JSON {"value": V, "expires_ms": T}
// (wall-clock milliseconds), so every agent of a cluster sees it, and expires
// `ttl` after its push: a reporter that dies must not pin the scale forever.
//
// Values are taken as given: per-instance averages, like the built-in ones.
// Thread-safe (the Store is).
#pragma once

#include <map>
#include <string>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/store/store.h"

namespace reactor {

class CustomMetrics {
 public:
  static constexpr Duration kDefaultTtl = Duration(60 * 1000);
  static constexpr Duration kMaxTtl = Duration(60 * 60 * 1000);

  /// `store` and `clock` must outlive this.
  CustomMetrics(Store& store, Clock& clock) : store_(store), clock_(clock) {}

  /// Sets `metric` of `endpoint` to `value` until `ttl` from now.
  /// InvalidArgument when: the endpoint name is not a valid key segment; the
  /// metric is not a rule-language METRIC name (rules::IsMetricName), or is a
  /// built-in one (IsBuiltinMetric); the value is negative, NaN or infinite;
  /// the ttl is not in (0, kMaxTtl]. REQUIRES (not checked): the endpoint exists.
  Status Push(const std::string& endpoint, const std::string& metric, double value, Duration ttl = kDefaultTtl);

  /// Validates like Push, without writing: for checking a batch first.
  static Status Validate(const std::string& metric, double value, Duration ttl = kDefaultTtl);

  /// The endpoint's unexpired custom metrics at `now_wall_ms` (wall-clock ms;
  /// Clock::WallMillis). Expired ones are deleted as they are found; records
  /// that are not valid JSON are skipped. Store failures give an empty map.
  std::map<std::string, double> Current(const std::string& endpoint, int64_t now_wall_ms);
  /// Current(endpoint, clock.WallMillis()).
  std::map<std::string, double> Current(const std::string& endpoint);

  /// Deletes every custom metric of the endpoint (when it is removed).
  Status Clear(const std::string& endpoint);

  /// rate, response, bytes, errors, active, instances, and response.p<N>.
  static bool IsBuiltinMetric(const std::string& metric);

 private:
  Store& store_;
  Clock& clock_;
};

}  // namespace reactor
