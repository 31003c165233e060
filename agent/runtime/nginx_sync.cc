#include "agent/runtime/nginx_sync.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "agent/endpoint/served_config.h"

namespace reactor {

void NginxSync::UpsertLocked(const EndpointRecord& rec) {
  auto it = sites_.find(rec.name);
  if (it == sites_.end()) {
    sites_.emplace(rec.name, Site{rec.mod_revision, configs_.size()});
    configs_.push_back(ServedConfig(rec));
    return;
  }
  // The same revision of a record serves the same: no copy.
  if (it->second.revision == rec.mod_revision) return;
  it->second.revision = rec.mod_revision;
  configs_[it->second.index] = ServedConfig(rec);
}

void NginxSync::EraseLocked(std::map<std::string, Site>::iterator it) {
  const size_t index = it->second.index;
  if (index + 1 != configs_.size()) {
    configs_[index] = std::move(configs_.back());
    sites_.at(configs_[index].name).index = index;
  }
  configs_.pop_back();
  sites_.erase(it);
}

Status NginxSync::ApplyChanged(const std::vector<Change>& changes) {
  std::lock_guard<std::mutex> lock(sites_mu_);
  // Before the first round the book is not every site: applying it would
  // take the others out of nginx.
  if (!primed_) return Status::Ok();
  bool changed = false;
  for (const Change& c : changes) {
    auto it = sites_.find(c.name);
    if (c.rec && c.rec->config_known) {
      if (it != sites_.end() && it->second.revision >= c.rec->mod_revision) continue;
      UpsertLocked(*c.rec);
      deleted_.erase(c.name);
      changed = true;
    } else if (!c.rec) {
      deleted_[c.name] = std::max(deleted_[c.name], c.revision);
      if (it != sites_.end() && it->second.revision < c.revision) {
        EraseLocked(it);
        changed = true;
      }
    }
  }
  return changed ? nginx_.ApplySites(configs_) : Status::Ok();
}

void NginxSync::Push(const Round& round) {
  Status st;
  {
    std::lock_guard<std::mutex> lock(sites_mu_);
    // A deletion this round read after has been seen by it.
    for (auto it = deleted_.begin(); it != deleted_.end();) {
      it = it->second <= round.endpoints_revision ? deleted_.erase(it) : std::next(it);
    }
    std::set<std::string> seen;
    for (const auto& rec : round.endpoints) {
      if (!rec.config_known) continue;
      seen.insert(rec.name);
      auto gone = deleted_.find(rec.name);
      if (gone != deleted_.end() && gone->second > rec.mod_revision) continue;  // deleted since the read
      auto it = sites_.find(rec.name);
      if (it != sites_.end() && it->second.revision > rec.mod_revision) continue;  // applied since the read
      UpsertLocked(rec);
    }
    for (auto it = sites_.begin(); it != sites_.end();) {
      // Absent from the round: gone by the revision the round read at,
      // unless created (or re-read) since.
      auto next = std::next(it);
      if (!seen.count(it->first) && it->second.revision <= round.endpoints_revision) EraseLocked(it);
      it = next;
    }
    st = nginx_.ApplySites(configs_);
    primed_ = true;
  }
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
