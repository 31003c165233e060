#include "agent/telemetry/agent_telemetry.h"

#include <map>
#include <set>

#include "agent/cluster/host_membership.h"
#include "agent/instances/instance_record.h"
#include "agent/metrics/tcp_table.h"
#include "agent/store/keys.h"
#include "agent/telemetry/prometheus_text.h"

namespace reactor {

namespace {

using nlohmann::json;

// The window of the live charts: short, so that a 1 s chart shows steps.
constexpr Duration kSampleWindow(2000);

const char* const kInstanceStates[] = {"starting", "active", "draining", "errored"};
const char* const kEndpointStates[] = {"running", "paused", "stopped", "deleting", "invalid"};

// As the API shows it: a record that no longer reads is `invalid`.
std::string StateOf(const EndpointRecord& rec) {
  return rec.problem.empty() ? EndpointStateName(rec.state) : "invalid";
}

std::vector<std::string> ActiveAddresses(const std::vector<InstanceRecord>& list) {
  std::vector<std::string> out;
  for (const auto& r : list) {
    if (r.state == InstanceState::kActive && !r.address.empty()) out.push_back(r.address);
  }
  return out;
}

json RangeJson(const EndpointStatus& st) {
  if (!st.has_range) return nullptr;
  return json::array(
      {st.range_min ? json(*st.range_min) : json(nullptr), st.range_max ? json(*st.range_max) : json(nullptr)});
}

}  // namespace

std::string AgentTelemetry::PrometheusText() {
  reactor::PrometheusText out;
  out.Family("reactor_build_info", "gauge", "The agent's version.");
  out.Sample("reactor_build_info", {{"version", REACTOR_VERSION}}, 1);

  auto list = s_.registry->List();
  std::vector<EndpointRecord> endpoints = list.ok() ? std::move(*list) : std::vector<EndpointRecord>();
  std::map<std::string, std::vector<InstanceRecord>> instances;
  auto all = InstanceTable(*s_.store).ListAll();
  if (all.ok()) {
    for (auto& r : *all) instances[r.endpoint].push_back(std::move(r));
  }
  const std::map<std::string, RequestTotals> totals = s_.collector->Totals();
  const std::map<std::string, HealthReport> health = s_.health->Snapshot();
  const std::vector<TcpSocket> tcp = ReadTcpTable();

  out.Family("reactor_endpoint_requests_total", "counter", "Requests nginx answered, by status class.");
  out.Family("reactor_endpoint_request_duration_seconds", "histogram",
             "Request time as nginx logs it ($request_time), seconds.");
  out.Family("reactor_endpoint_response_bytes_total", "counter", "Bytes nginx sent to clients ($bytes_sent).");
  out.Family("reactor_endpoint_active_connections", "gauge", "Open connections to the instances in service.");
  out.Family("reactor_endpoint_instances", "gauge", "Instances by lifecycle state.");
  out.Family("reactor_endpoint_desired_instances", "gauge", "The instance count the scaler aims for.");
  out.Family("reactor_endpoint_min_instances", "gauge", "[scaling] min_instances.");
  out.Family("reactor_endpoint_max_instances", "gauge", "[scaling] max_instances.");
  out.Family("reactor_endpoint_rule_metric", "gauge",
             "Per-instance averages over the endpoint's window, as the rules see them (base units).");
  out.Family("reactor_endpoint_scale_events_total", "counter", "Instances launched (up) or drained (down) by scaling.");
  out.Family("reactor_endpoint_state", "gauge", "1 for the endpoint's current state.");
  out.Family("reactor_instance_up", "gauge", "1 when the instance is active and passes its health check.");
  out.Family("reactor_health_checks_total", "counter", "Health checks finished, by result.");

  std::set<std::string> names;
  for (const auto& rec : endpoints) {
    const std::string& name = rec.name;
    names.insert(name);
    const MetricLabels ep = {{"endpoint", name}};
    const RequestTotals t = totals.count(name) ? totals.at(name) : RequestTotals();
    for (size_t c = 0; c < t.by_class.size(); ++c) {
      out.Sample("reactor_endpoint_requests_total", {{"endpoint", name}, {"code", std::to_string(c + 1) + "xx"}},
                 static_cast<double>(t.by_class[c]));
    }
    const std::string h = "reactor_endpoint_request_duration_seconds";
    for (size_t i = 0; i < RequestTotals::kBuckets.size(); ++i) {
      out.Sample(h, h + "_bucket", {{"endpoint", name}, {"le", FormatSampleValue(RequestTotals::kBuckets[i])}},
                 static_cast<double>(t.CumulativeBucket(i)));
    }
    out.Sample(h, h + "_bucket", {{"endpoint", name}, {"le", "+Inf"}}, static_cast<double>(t.requests));
    out.Sample(h, h + "_sum", ep, t.duration_sum);
    out.Sample(h, h + "_count", ep, static_cast<double>(t.requests));
    out.Sample("reactor_endpoint_response_bytes_total", ep, static_cast<double>(t.bytes));

    const std::vector<InstanceRecord>& inst = instances[name];
    std::map<std::string, int> by_state;
    for (const auto& r : inst) by_state[InstanceStateName(r.state)]++;
    for (const char* st : kInstanceStates) {
      out.Sample("reactor_endpoint_instances", {{"endpoint", name}, {"state", st}}, by_state[st]);
    }
    const std::vector<std::string> active = ActiveAddresses(inst);
    EndpointMetrics m = s_.collector->Metrics(name, rec.config.scaling.window, active, &tcp);
    out.Sample("reactor_endpoint_active_connections", ep, m.averages["active"] * std::max<size_t>(1, active.size()));
    std::optional<EndpointStatus> st = s_.reconciler->GetStatus(name);
    out.Sample("reactor_endpoint_desired_instances", ep, st ? st->target : 0);
    out.Sample("reactor_endpoint_min_instances", ep, rec.config.scaling.min_instances);
    out.Sample("reactor_endpoint_max_instances", ep, rec.config.scaling.max_instances);
    std::map<std::string, double> rule = m.averages;
    if (s_.custom) {
      for (const auto& [k, v] : s_.custom->Current(name)) rule[k] = v;
    }
    for (const auto& [k, v] : rule) out.Sample("reactor_endpoint_rule_metric", {{"endpoint", name}, {"metric", k}}, v);
    for (const char* dir : {"up", "down"}) {
      const MetricLabels l = {{"endpoint", name}, {"direction", dir}};
      out.Sample("reactor_endpoint_scale_events_total", l,
                 s_.counters->Value("reactor_endpoint_scale_events_total", l));
    }
    for (const char* es : kEndpointStates) {
      out.Sample("reactor_endpoint_state", {{"endpoint", name}, {"state", es}}, StateOf(rec) == es ? 1 : 0);
    }
    for (const auto& r : inst) {
      auto hr = health.find(HealthTargetId(r));
      bool up = r.state == InstanceState::kActive && hr != health.end() && hr->second.state == HealthState::kHealthy;
      out.Sample("reactor_instance_up", {{"endpoint", name}, {"instance", r.id}, {"manager", r.manager}}, up ? 1 : 0);
    }
    for (const char* res : {"success", "failure"}) {
      const MetricLabels l = {{"endpoint", name}, {"result", res}};
      out.Sample("reactor_health_checks_total", l, s_.counters->Value("reactor_health_checks_total", l));
    }
  }

  out.Family("reactor_nginx_reloads_total", "counter", "nginx reloads, by result.");
  for (const char* res : {"ok", "failed"}) {
    const MetricLabels l = {{"result", res}};
    out.Sample("reactor_nginx_reloads_total", l, s_.counters->Value("reactor_nginx_reloads_total", l));
  }
  out.Family("reactor_store_errors_total", "counter", "State store calls that failed.");
  out.Sample("reactor_store_errors_total", {}, s_.counters->Value("reactor_store_errors_total", {}));

  out.Family("reactor_manager_slots", "gauge", "Scheduling slots of each manager.");
  json managers = Managers();
  for (const auto& m : managers) {
    const std::string name = m.value("name", "");
    if (name.empty()) continue;
    out.Sample("reactor_manager_slots", {{"manager", name}, {"kind", "total"}}, m.value("slots", 0));
    out.Sample("reactor_manager_slots", {{"manager", name}, {"kind", "used"}}, m.value("slots_used", 0));
  }
  out.Family("reactor_api_streams_open", "gauge", "Open event streams and long polls of the API.");
  out.Sample("reactor_api_streams_open", {}, s_.open_streams ? s_.open_streams() : 0);

  HoldFamilies(names, &out);

  // Counters other modules added that are not listed above (new families):
  // exported as they are, for endpoints that still exist.
  static const std::set<std::string> kListed = {"reactor_endpoint_scale_events_total", "reactor_health_checks_total",
                                                "reactor_nginx_reloads_total", "reactor_store_errors_total"};
  for (const auto& series : s_.counters->Snapshot()) {
    if (kListed.count(series.family)) continue;
    bool gone = false;
    for (const auto& [k, v] : series.labels) gone = gone || (k == "endpoint" && !names.count(v));
    if (gone) continue;
    out.Family(series.family, "counter", series.family);
    out.Sample(series.family, series.labels, series.value);
  }
  return out.Render();
}

void AgentTelemetry::HoldFamilies(const std::set<std::string>& endpoints, reactor::PrometheusText* out) {
  if (!hold_report_) return;
  Result<HoldReport> report = hold_report_();
  // nginx not answering: the families are absent from this scrape rather
  // than reset to zero.
  if (!report.ok()) return;
  out->Family("reactor_endpoint_held_requests_total", "counter",
              "Requests nginx held for an endpoint with no healthy instance, by how the hold ended.");
  out->Family("reactor_endpoint_held_requests", "gauge", "Requests nginx holds now.");
  out->Family("reactor_endpoint_wakeups_total", "counter", "Holds opened: each wakes the endpoint once.");
  const std::string h = "reactor_endpoint_hold_wait_seconds";
  out->Family(h, "histogram", "How long held requests waited (until served or hold_timeout), seconds.");
  for (const auto& [name, st] : report->endpoints) {
    if (!endpoints.count(name)) continue;
    const MetricLabels ep = {{"endpoint", name}};
    const std::pair<const char*, uint64_t> results[] = {
        {"served", st.served}, {"timeout", st.timed_out}, {"rejected", st.rejected}};
    for (const auto& [result, n] : results) {
      out->Sample("reactor_endpoint_held_requests_total", {{"endpoint", name}, {"result", result}},
                  static_cast<double>(n));
    }
    out->Sample("reactor_endpoint_held_requests", ep, st.held);
    out->Sample("reactor_endpoint_wakeups_total", ep, static_cast<double>(st.wakes));
    uint64_t cumulative = 0;
    for (size_t i = 0; i < report->bounds.size() && i < st.buckets.size(); ++i) {
      cumulative += st.buckets[i];
      out->Sample(h, h + "_bucket", {{"endpoint", name}, {"le", FormatSampleValue(report->bounds[i])}},
                  static_cast<double>(cumulative));
    }
    // +Inf and the count from the buckets themselves (nginx bumps the
    // result counters apart from them): a scrape is always self-consistent.
    for (size_t i = report->bounds.size(); i < st.buckets.size(); ++i) cumulative += st.buckets[i];
    out->Sample(h, h + "_bucket", {{"endpoint", name}, {"le", "+Inf"}}, static_cast<double>(cumulative));
    out->Sample(h, h + "_sum", ep, st.wait_seconds_sum);
    out->Sample(h, h + "_count", ep, static_cast<double>(cumulative));
  }
}

json AgentTelemetry::Sample(const std::vector<std::string>& endpoints) {
  json out = json::object();
  const std::map<std::string, HealthReport> health = s_.health->Snapshot();
  const std::vector<TcpSocket> tcp = ReadTcpTable();
  for (const std::string& name : endpoints) {
    auto rec = s_.registry->Get(name);
    if (!rec.ok()) continue;
    auto inst = InstanceTable(*s_.store).List(name);
    std::vector<InstanceRecord> list = inst.ok() ? std::move(*inst) : std::vector<InstanceRecord>();
    const std::vector<std::string> active = ActiveAddresses(list);
    EndpointMetrics m = s_.collector->Metrics(name, kSampleWindow, active, &tcp);
    const double n = std::max<double>(1, static_cast<double>(active.size()));
    json j = {{"state", StateOf(*rec)},
              {"min", rec->config.scaling.min_instances},
              {"max", rec->config.scaling.max_instances},
              {"rules", rec->config.scaling.rules},
              {"rate", m.total_rate},
              {"bytes", m.averages["bytes"] * n},
              {"errors", m.averages["errors"] * n},
              {"active", m.averages["active"] * n},
              {"response", m.averages["response"]},
              {"p50", m.averages["response.p50"]},
              {"p95", m.averages["response.p95"]},
              {"p99", m.averages["response.p99"]},
              {"instances", 0},
              {"healthy", 0},
              {"draining", 0},
              {"target", nullptr},
              {"range", nullptr},
              {"problem", rec->problem},
              {"last_decision", ""}};
    if (auto st = s_.reconciler->GetStatus(name)) {
      j["instances"] = st->instances;
      j["healthy"] = st->healthy;
      j["draining"] = st->draining;
      j["target"] = st->target;
      j["range"] = RangeJson(*st);
      j["problem"] = rec->problem.empty() ? st->problem : rec->problem;
      j["last_decision"] = st->last_decision;
    }
    json table = json::array();
    for (const auto& r : list) {
      auto hr = health.find(HealthTargetId(r));
      table.push_back({{"id", r.id},
                       {"address", r.address},
                       {"state", InstanceStateName(r.state)},
                       {"manager", r.manager},
                       {"since_ms", r.state_since_ms},
                       {"reason", r.reason},
                       {"health", hr == health.end() ? "" : hr->second.last_result}});
    }
    j["instance_list"] = table;
    out[name] = j;
  }
  return out;
}

std::optional<TelemetrySource::RuleInputs> AgentTelemetry::Inputs(const std::string& endpoint) {
  auto rec = s_.registry->Get(endpoint);
  if (!rec.ok()) return std::nullopt;
  auto inst = InstanceTable(*s_.store).List(endpoint);
  std::vector<InstanceRecord> list = inst.ok() ? std::move(*inst) : std::vector<InstanceRecord>();
  RuleInputs in;
  for (const auto& r : list) {
    if (r.state == InstanceState::kStarting || r.state == InstanceState::kActive) in.instances++;
  }
  in.averages = s_.collector->Metrics(endpoint, rec->config.scaling.window, ActiveAddresses(list)).averages;
  if (s_.custom) {
    for (const auto& [k, v] : s_.custom->Current(endpoint)) in.averages[k] = v;
  }
  return in;
}

json AgentTelemetry::Managers() {
  // The same view as GET /v1/managers (state up, cordoned or gone; draining).
  json out = json::array();
  auto list = ListManagers(*s_.store, SystemClock::Get().WallMillis());
  if (!list.ok()) return out;
  for (const auto& m : *list) {
    out.push_back({{"name", m.name},
                   {"address", m.address},
                   {"state", m.state},
                   {"draining", m.draining},
                   {"slots", m.slots},
                   {"slots_used", m.slots_used},
                   {"instances", m.instances},
                   {"owned", m.owned},
                   {"lease_left_ms", m.lease_left_ms}});
  }
  return out;
}

}  // namespace reactor
