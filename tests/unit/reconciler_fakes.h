// Fakes for tests of the agent loop (Reconciler and its parts): a cloud
// whose instances run at once, an nginx that only remembers, a health source
// that passes every instance not listed as failing, and a fixed policy.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/cloud/cloud.h"
#include "agent/health/health_checker.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/scaler/scaling_policy.h"

namespace reactor {

class FakeCloud : public Cloud {
 public:
  const char* Name() const override { return "process"; }
  // Thread-safe like the real clouds: the reconciler stops instances on a
  // worker thread while its loop launches and lists.
  Result<InstanceInfo> Launch(const LaunchRequest& req) override {
    std::lock_guard<std::mutex> lock(mu);
    launches++;
    if (fail_launches) return Status::Unavailable("no port free");
    InstanceInfo i;
    i.instance_id = req.instance_id;
    i.endpoint = req.endpoint->name;
    i.address = host + ":" + std::to_string(31000 + next_port++);
    i.running = true;
    i.detail = "pid 1";
    running[i.instance_id] = i;
    return i;
  }
  Status Stop(const std::string& id, Duration) override {
    std::lock_guard<std::mutex> lock(mu);
    stops++;
    running.erase(id);
    return Status::Ok();
  }
  Result<std::vector<InstanceInfo>> List(const std::string&) override {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<InstanceInfo> out;
    for (auto& [id, i] : running) out.push_back(i);
    return out;
  }
  Result<InstanceInfo> Inspect(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu);
    auto it = running.find(id);
    if (it == running.end()) return Status::NotFound(id);
    return it->second;
  }
  std::mutex mu;
  std::map<std::string, InstanceInfo> running;
  int launches = 0;
  int stops = 0;
  int next_port = 0;
  bool fail_launches = false;
  std::string host = "127.0.0.1";  // the address its instances get
};

class FakeNginx : public NginxController {
 public:
  Status Start() override { return Status::Ok(); }
  Status ApplySites(const std::vector<EndpointConfig>& e) override {
    sites = e.size();
    return Status::Ok();
  }
  Status SetMembers(const std::string& endpoint, const std::vector<Member>& m) override {
    members[endpoint] = m;
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::optional<Duration> UntilFlushDue() const override { return std::nullopt; }
  Status Supervise() override { return Status::Ok(); }
  void Detach() override {}
  std::string AccessLogPath() const override { return "/dev/null"; }
  int ReloadCount() const override { return 0; }
  size_t sites = 0;
  std::map<std::string, std::vector<Member>> members;
};

// Every instance with an address is healthy unless listed in `failing`.
class FakeHealth : public HealthSource {
 public:
  void SetTargets(const std::vector<HealthTarget>& t) override { targets = t; }
  std::map<std::string, HealthReport> Snapshot() const override {
    std::map<std::string, HealthReport> out;
    for (const auto& t : targets) {
      HealthReport r;
      bool bad = failing.count(t.id) > 0;
      r.state = bad ? (t.initially_healthy ? HealthState::kUnhealthy : HealthState::kPending) : HealthState::kHealthy;
      r.consecutive_successes = bad ? 0 : 1;
      r.consecutive_failures = bad ? 3 : 0;
      r.last_result = bad ? "connection refused" : "HTTP 200";
      out[t.id] = r;
    }
    return out;
  }
  std::vector<HealthTarget> targets;
  std::set<std::string> failing;
};

class FixedPolicy : public ScalingPolicy {
 public:
  Decision Decide(const EndpointConfig&, int, const std::vector<std::string>&) override {
    Decision d;
    d.target = target;
    d.range_min = target;
    d.range_max = target;
    d.explanation = "fixed target " + std::to_string(target);
    return d;
  }
  int target = 1;
};

}  // namespace reactor
