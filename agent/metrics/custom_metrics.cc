#include "agent/metrics/custom_metrics.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "agent/store/keys.h"
#include "rules/rules.h"

namespace reactor {

bool CustomMetrics::IsBuiltinMetric(const std::string& metric) {
  static const char* const kBuiltins[] = {"rate", "response", "bytes", "errors", "active", "instances"};
  for (const char* b : kBuiltins) {
    if (metric == b) return true;
  }
  // response.p50, .p95, .p99 and any other percentile a later version may add.
  return metric.rfind("response.p", 0) == 0;
}

Status CustomMetrics::Validate(const std::string& metric, double value, Duration ttl) {
  if (!rules::IsMetricName(metric)) {
    return Status::InvalidArgument("metric name '" + metric +
                                   "' must be a letter or '_' followed by letters, digits, '_' or '.'");
  }
  if (IsBuiltinMetric(metric)) {
    return Status::InvalidArgument("metric '" + metric +
                                   "' is built in (measured from nginx's log); pick another name");
  }
  if (!std::isfinite(value) || value < 0) {
    return Status::InvalidArgument("metric '" + metric + "': value must be a finite number >= 0");
  }
  if (ttl.count() <= 0 || ttl > kMaxTtl) {
    return Status::InvalidArgument("ttl must be more than 0 and at most 1h");
  }
  return Status::Ok();
}

Status CustomMetrics::Push(const std::string& endpoint, const std::string& metric, double value, Duration ttl) {
  if (!IsValidKeySegment(endpoint)) return Status::InvalidArgument("bad endpoint name '" + endpoint + "'");
  REACTOR_RETURN_IF_ERROR(Validate(metric, value, ttl));
  nlohmann::json j = {{"value", value}, {"expires_ms", clock_.WallMillis() + ttl.count()}};
  auto put = store_.Put(CustomMetricKey(endpoint, metric), j.dump());
  return put.ok() ? Status::Ok() : put.status();
}

std::map<std::string, double> CustomMetrics::Current(const std::string& endpoint, int64_t now_wall_ms) {
  std::map<std::string, double> out;
  if (!IsValidKeySegment(endpoint)) return out;
  const std::string prefix = CustomMetricPrefix(endpoint);
  auto kvs = store_.GetPrefix(prefix);
  if (!kvs.ok()) return out;
  for (const KeyValue& kv : *kvs) {
    const std::string metric = kv.key.substr(prefix.size());
    auto j = nlohmann::json::parse(kv.value, nullptr, false);
    if (!j.is_object() || !j.contains("value") || !j["value"].is_number() || !j.contains("expires_ms") ||
        !j["expires_ms"].is_number()) {
      continue;
    }
    if (j["expires_ms"].get<int64_t>() <= now_wall_ms) {
      // Only if nobody refreshed it meanwhile.
      Txn txn;
      txn.compares.push_back(Compare::ModRevisionIs(kv.key, kv.mod_revision));
      txn.success.push_back(Op::Delete(kv.key));
      (void)store_.Commit(txn);
      continue;
    }
    out[metric] = j["value"].get<double>();
  }
  return out;
}

std::map<std::string, double> CustomMetrics::Current(const std::string& endpoint) {
  return Current(endpoint, clock_.WallMillis());
}

Status CustomMetrics::Clear(const std::string& endpoint) {
  if (!IsValidKeySegment(endpoint)) return Status::InvalidArgument("bad endpoint name '" + endpoint + "'");
  return store_.DeletePrefix(CustomMetricPrefix(endpoint));
}

}  // namespace reactor
