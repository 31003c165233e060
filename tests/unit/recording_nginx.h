// An NginxController that only remembers what it was given, thread-safe
// (unlike FakeNginx): for tests where calls arrive from another thread
// (BoundedNginxController's worker) while the test reads.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/nginx/nginx_controller.h"

namespace reactor {

class RecordingNginx : public NginxController {
 public:
  Status Start() override { return Status::Ok(); }
  Status ApplySites(const std::vector<EndpointConfig>& e) override {
    std::lock_guard<std::mutex> lock(mu);
    sites = e.size();
    applied++;
    return Status::Ok();
  }
  Status SetMembers(const std::string& endpoint, const std::vector<Member>& m) override {
    std::lock_guard<std::mutex> lock(mu);
    members[endpoint] = m;
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::optional<Duration> UntilFlushDue() const override { return Duration(0); }
  Status Supervise() override { return Status::Ok(); }
  void Detach() override {}
  std::string AccessLogPath() const override { return "/dev/null"; }
  int ReloadCount() const override { return 7; }
  std::map<std::string, std::string> HeldBack() const override { return {{"bad", "nginx -t: refused"}}; }

  size_t Sites() {
    std::lock_guard<std::mutex> lock(mu);
    return sites;
  }
  int Applied() {
    std::lock_guard<std::mutex> lock(mu);
    return applied;
  }
  size_t MembersOf(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    return members[e].size();
  }

  std::mutex mu;
  size_t sites = 0;
  int applied = 0;
  std::map<std::string, std::vector<Member>> members;
};

}  // namespace reactor
