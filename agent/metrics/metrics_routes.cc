#include "agent/metrics/metrics_routes.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "agent/common/units.h"
#include "rules/rules.h"

namespace reactor {

namespace {

using nlohmann::json;

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void ReplyError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st);
  res.set_content(ErrorBody(st), "application/json");
}

// A metric value: a JSON number, or a string with a unit ("800ms", "2k").
bool MetricValue(const json& v, double* out) {
  if (v.is_number()) {
    *out = v.get<double>();
    return true;
  }
  if (v.is_string()) {
    auto q = rules::ParseQuantity(v.get<std::string>());
    if (q) *out = *q;
    return q.has_value();
  }
  return false;
}

Result<Duration> TtlOf(const json& body) {
  auto it = body.find("ttl");
  if (it == body.end() || it->is_null()) return CustomMetrics::kDefaultTtl;
  if (it->is_number()) {
    double s = it->get<double>();
    if (!(s > 0) || s > 3600) return Status::InvalidArgument("ttl must be more than 0 and at most 1h");
    return Duration(static_cast<int64_t>(s * 1000));
  }
  if (!it->is_string()) return Status::InvalidArgument("ttl must be a duration such as \"30s\"");
  auto d = ParseDuration(it->get<std::string>());
  if (!d.ok()) return Status::InvalidArgument("ttl: " + d.status().message());
  return *d;
}

}  // namespace

MetricsRoutes::MetricsRoutes(MetricsCollector& collector, CustomMetrics& custom, EndpointRegistry& registry,
                             Store& store, InstancesInService instances)
    : collector_(collector), custom_(custom), registry_(registry), store_(store), instances_(std::move(instances)) {}

void MetricsRoutes::Register(httplib::Server& server) {
  const std::string path = "/v1/endpoints/([^/]+)/metrics";

  server.Get(path, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    auto rec = registry_.Get(name);
    if (!rec.ok()) return ReplyError(res, rec.status());
    const std::vector<std::string> in_service = instances_ ? instances_(name) : std::vector<std::string>();
    EndpointMetrics m;
    if (cluster_ != nullptr) {
      auto summed = cluster_->Metrics(name, rec->config.scaling.window, in_service);
      if (!summed.ok()) return ReplyError(res, summed.status());
      m = std::move(*summed);
      m.unparsed = collector_.Unparsed();
      m.log_problem = collector_.LogProblem();
    } else {
      m = collector_.Metrics(name, rec->config.scaling.window, in_service);
    }
    json metrics = json::object();
    for (const auto& [k, v] : m.averages) metrics[k] = v;
    for (const auto& [k, v] : custom_.Current(name)) metrics[k] = v;
    json out = {{"endpoint", name},    {"window_s", m.window_s},     {"instances", m.instances},
                {"metrics", metrics},  {"total_rate", m.total_rate}, {"unparsed", m.unparsed},
                {"log", m.log_problem}};
    const std::string want = req.has_param("instances") ? req.get_param_value("instances") : "";
    if (!want.empty() && want != "0" && want != "false") {
      json backends = json::object();
      for (const auto& [addr, b] : m.backends) {
        backends[addr] = {
            {"hits", b.hits}, {"bytes", b.bytes},       {"errors", b.errors}, {"response_sum", b.response_sum},
            {"rate", b.rate}, {"response", b.response}, {"active", b.active}, {"in_service", b.in_service}};
      }
      out["backends"] = backends;
    }
    Reply(res, 200, out);
  });

  server.Post(path, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    auto rec = registry_.Get(name);
    if (!rec.ok()) return ReplyError(res, rec.status());
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) return ReplyError(res, Status::InvalidArgument("request body must be a JSON object"));
    auto metrics = body.find("metrics");
    if (metrics == body.end() || !metrics->is_object() || metrics->empty()) {
      return ReplyError(res, Status::InvalidArgument("\"metrics\" must be a non-empty object of name: value"));
    }
    auto ttl = TtlOf(body);
    if (!ttl.ok()) return ReplyError(res, ttl.status());
    // All or nothing: check every pair before storing any.
    std::string problems;
    std::vector<std::pair<std::string, double>> values;
    for (const auto& [k, v] : metrics->items()) {
      double value = 0;
      Status st = MetricValue(v, &value) ? CustomMetrics::Validate(k, value, *ttl)
                                         : Status::InvalidArgument("metric '" + k + "': value must be a number");
      if (!st.ok()) {
        problems += (problems.empty() ? "" : "\n") + st.message();
        continue;
      }
      values.emplace_back(k, value);
    }
    if (!problems.empty()) return ReplyError(res, Status::InvalidArgument(problems));
    json names = json::array();
    for (const auto& [k, value] : values) {
      Status st = custom_.Push(name, k, value, *ttl);
      if (!st.ok()) return ReplyError(res, st.WithContext("metric '" + k + "'"));
      names.push_back(k);
    }
    Reply(res, 200, {{"endpoint", name}, {"metrics", names}, {"ttl_s", ttl->count() / 1000.0}});
  });
}

}  // namespace reactor
