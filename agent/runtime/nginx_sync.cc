#include "agent/runtime/nginx_sync.h"

#include <spdlog/spdlog.h>

#include <set>

#include "agent/endpoint/served_config.h"

namespace reactor {

void NginxSync::Push(const Round& round) {
  std::vector<EndpointConfig> sites;
  for (const auto& rec : round.endpoints) {
    if (rec.config_known) sites.push_back(ServedConfig(rec));
  }
  Status st = nginx_.ApplySites(sites);
  if (!st.ok()) spdlog::warn("nginx: {}", st.ToString());

  std::set<std::string> names;
  for (const auto& rec : round.endpoints) {
    if (!rec.config_known) continue;
    names.insert(rec.name);
    std::vector<Member> members;
    auto er = round.by_endpoint.find(rec.name);
    if (er != round.by_endpoint.end()) {
      for (const auto& r : er->second.instances) {
        if (r.state != InstanceState::kActive || r.address.empty()) continue;
        if (r.cloud != "static" && !round.view.IsUp(r.manager)) continue;
        members.push_back({r.address, rec.config.weight});
      }
    }
    auto it = pushed_members_.find(rec.name);
    if (it != pushed_members_.end() && it->second == members) continue;
    st = nginx_.SetMembers(rec.name, members);
    if (st.ok()) {
      pushed_members_[rec.name] = members;
    } else {
      events_.Record(rec.name, "nginx", "cannot update upstream members: " + st.ToString());
    }
  }
  for (auto it = pushed_members_.begin(); it != pushed_members_.end();) {
    it = names.count(it->first) ? std::next(it) : pushed_members_.erase(it);
  }
  st = nginx_.Flush();
  if (!st.ok()) spdlog::warn("nginx flush: {}", st.ToString());
}

}  // namespace reactor
