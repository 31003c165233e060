#include "agent/runtime/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/store/keys.h"

namespace reactor {

ScalingPolicy::Decision MinMaxPolicy::Decide(const EndpointConfig& cfg, int current, const std::vector<std::string>&) {
  Decision d;
  d.range_min = cfg.scaling.min_instances;
  d.range_max = cfg.scaling.max_instances;
  d.target = std::clamp(current, cfg.scaling.min_instances, cfg.scaling.max_instances);
  return d;
}

namespace {

using nlohmann::json;

OwnerElection::Options ElectionOptions(const ReconcilerOptions& o) {
  OwnerElection::Options e;
  e.self = o.manager;
  e.lease_ttl = o.lease_ttl;
  e.takeover_wait = o.takeover_wait;
  if (HostMembership* m = o.membership; m != nullptr) {
    e.lease = [m] { return m->Lease(); };
    e.lease_left = [m] { return m->LeaseLeft(); };
  }
  return e;
}

// What the owner decided, for the other hosts' `status`.
std::string EncodeDecided(const EndpointStatus& s) {
  json j = {{"owner", s.owner},
            {"target", s.target},
            {"has_range", s.has_range},
            {"last_decision", s.last_decision},
            {"problem", s.problem}};
  j["range_min"] = s.range_min ? json(*s.range_min) : json(nullptr);
  j["range_max"] = s.range_max ? json(*s.range_max) : json(nullptr);
  return j.dump();
}

void DecodeDecided(const std::string& value, EndpointStatus* s) {
  auto j = json::parse(value, nullptr, false);
  if (!j.is_object()) return;
  try {
    s->target = j.value("target", 0);
    s->has_range = j.value("has_range", true);
    s->last_decision = j.value("last_decision", "");
    s->problem = j.value("problem", "");
    if (j.contains("range_min") && j["range_min"].is_number()) s->range_min = j["range_min"].get<long>();
    if (j.contains("range_max") && j["range_max"].is_number()) s->range_max = j["range_max"].get<long>();
  } catch (const json::exception&) {
    // A status that does not read shows only the counts.
  }
}

}  // namespace

Reconciler::Reconciler(ReconcilerOptions options, Store& store, EventLog& events, NginxController& nginx,
                       HealthSource& health, std::map<CloudKind, Cloud*> clouds, ScalingPolicy& policy, Clock& clock,
                       std::function<int(const std::string&)> active_connections)
    : options_(std::move(options)),
      store_(store),
      events_(events),
      nginx_(nginx),
      registry_(store, nullptr),
      instances_(store),
      election_(ElectionOptions(options_), store, events, clock),
      actuator_({options_.manager, options_.start_timeout, options_.stop_grace, options_.min_drain}, store, events,
                health, std::move(clouds), clock, std::move(active_connections)),
      owner_({options_.manager, options_.on_endpoint_removed}, store, events, registry_, election_, policy, clock),
      nginx_sync_(nginx, events) {}

Status Reconciler::RunOnce() {
  Round round;
  auto endpoints = registry_.List(&round.endpoints_revision);
  if (!endpoints.ok()) return endpoints.status();
  round.endpoints = std::move(*endpoints);
  std::vector<std::string> unreadable;
  auto all_instances = instances_.ListAll(&unreadable);
  if (!all_instances.ok()) return all_instances.status();
  round.unreadable.insert(unreadable.begin(), unreadable.end());
  auto view = ReadClusterView(store_, options_.manager, options_.slots, actuator_.Drivers(), *all_instances);
  if (!view.ok()) return view.status();
  round.view = std::move(*view);

  std::vector<std::string> names;
  for (const auto& rec : round.endpoints) {
    EndpointRound& er = round.by_endpoint[rec.name];
    er.record = &rec;
    er.name = rec.name;
    names.push_back(rec.name);
  }
  for (auto& inst : *all_instances) {
    EndpointRound& er = round.by_endpoint[inst.endpoint];
    er.name = inst.endpoint;
    er.instances.push_back(std::move(inst));
  }

  actuator_.Observe(round);
  actuator_.Check(round);
  election_.Refresh(names, round.view);
  if (election_.MayDecide()) {
    for (auto& [name, er] : round.by_endpoint) {
      if (er.record == nullptr) continue;
      auto fence = election_.FenceFor(name);
      if (fence) owner_.Decide(round, er, *fence);
    }
  }
  owner_.Forget(std::set<std::string>(names.begin(), names.end()));
  actuator_.Act(round);
  nginx_sync_.Push(round);

  int slots_used = 0, running_here = 0;
  addresses_.clear();
  for (const auto& [name, er] : round.by_endpoint) {
    for (const auto& r : er.instances) {
      if (!r.address.empty()) addresses_[r.endpoint].push_back(r.address);
      if (r.manager != options_.manager || r.cloud == "static") continue;
      slots_used += r.slots;
      running_here++;
    }
  }
  if (options_.membership != nullptr) options_.membership->Update(slots_used, running_here);
  for (const auto& name : names) {
    if (!election_.FenceFor(name)) continue;
    Status st = events_.Trim(name);
    if (!st.ok()) spdlog::warn("event log trim {}: {}", name, st.ToString());
  }
  Status st = events_.Trim("");
  if (!st.ok()) spdlog::warn("event log trim: {}", st.ToString());

  std::map<std::string, EndpointStatus> statuses;
  Summarize(round, &statuses);
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status_ = std::move(statuses);
  }
  return Status::Ok();
}

void Reconciler::Summarize(Round& round, std::map<std::string, EndpointStatus>* statuses) {
  auto decided = store_.GetPrefix(EndpointStatusPrefix());
  std::map<std::string, std::string> stored;
  if (decided.ok()) {
    for (const auto& kv : *decided) stored[kv.key.substr(EndpointStatusPrefix().size())] = kv.value;
  }
  for (auto& [name, er] : round.by_endpoint) {
    if (er.record == nullptr) continue;
    const EndpointRecord& rec = *er.record;
    EndpointStatus& s = er.status;
    s.name = rec.name;
    s.owner = OwnerElection::OwnerOf(round.view, name);
    if (!er.decided) {
      auto it = stored.find(name);
      if (it != stored.end()) DecodeDecided(it->second, &s);
      if (s.owner.empty()) s.problem = "waiting for an owner";
    }
    s.state = rec.problem.empty() ? EndpointStateName(rec.state) : "invalid";
    if (!rec.problem.empty()) s.problem = rec.problem;
    for (const auto& r : er.instances) {
      if (r.state == InstanceState::kStarting) s.instances++;
      if (r.state == InstanceState::kActive) {
        s.instances++;
        s.healthy++;
      }
      if (r.state == InstanceState::kDraining) s.draining++;
    }
    if (er.decided) PublishStatus(er);
    (*statuses)[name] = s;
  }
  // An endpoint nginx could not take (it keeps its previous config, if
  // any) says so in its status.
  for (const auto& [name, why] : nginx_.HeldBack()) {
    auto it = statuses->find(name);
    if (it == statuses->end()) continue;
    std::string note = "nginx holds it back: " + why;
    it->second.problem = it->second.problem.empty() ? note : it->second.problem + "; " + note;
  }
  for (auto it = published_status_.begin(); it != published_status_.end();) {
    it = statuses->count(it->first) ? std::next(it) : published_status_.erase(it);
  }
}

void Reconciler::PublishStatus(const EndpointRound& er) {
  auto fence = election_.FenceFor(er.name);
  if (!fence) return;
  std::string value = EncodeDecided(er.status);
  auto& last = published_status_[er.name];
  if (last == value) return;
  Txn t;
  t.compares.push_back(fence->Check());
  t.success.push_back(Op::Put(EndpointStatusKey(er.name), value));
  auto r = store_.Commit(t);
  if (r.ok() && r->succeeded) last = value;
}

std::optional<EndpointStatus> Reconciler::GetStatus(const std::string& name) const {
  std::lock_guard<std::mutex> lock(status_mu_);
  auto it = status_.find(name);
  if (it == status_.end()) return std::nullopt;
  return it->second;
}

std::vector<EndpointStatus> Reconciler::AllStatus() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  std::vector<EndpointStatus> out;
  for (const auto& [name, st] : status_) out.push_back(st);
  return out;
}

}  // namespace reactor
