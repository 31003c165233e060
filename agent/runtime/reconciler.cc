#include "agent/runtime/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/cloud/static_cloud.h"
#include "agent/common/units.h"
#include "agent/endpoint/served_config.h"
#include "agent/store/keys.h"
#include "agent/telemetry/counter_registry.h"

namespace reactor {

ScalingPolicy::Decision MinMaxPolicy::Decide(const EndpointConfig& cfg, int current,
                                             const std::vector<std::string>&) {
  Decision d;
  d.range_min = cfg.scaling.min_instances;
  d.range_max = cfg.scaling.max_instances;
  d.target = std::clamp(current, cfg.scaling.min_instances, cfg.scaling.max_instances);
  return d;
}

// Everything one round knows about one endpoint.
struct Reconciler::EndpointRound {
  const EndpointRecord* record = nullptr;  // null for instances whose endpoint is gone
  std::string name;
  std::vector<InstanceRecord> instances;
  Cloud* cloud = nullptr;
  EndpointStatus status;
};

Reconciler::Reconciler(ReconcilerOptions options, Store& store, EventLog& events, NginxController& nginx,
                       HealthSource& health, std::map<CloudKind, Cloud*> clouds, ScalingPolicy& policy,
                       Clock& clock, std::function<int(const std::string&)> active_connections)
    : options_(std::move(options)),
      store_(store),
      events_(events),
      nginx_(nginx),
      health_(health),
      clouds_(std::move(clouds)),
      policy_(policy),
      clock_(clock),
      active_connections_(std::move(active_connections)),
      registry_(store, nullptr),
      instances_(store) {
  stop_thread_ = std::thread([this] { StopWorker(); });
}

Reconciler::~Reconciler() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_worker_exit_ = true;
  }
  stop_cv_.notify_all();
  stop_thread_.join();
}

void Reconciler::StopWorker() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (true) {
    stop_cv_.wait(lock, [this] { return stop_worker_exit_ || !stop_queue_.empty(); });
    // On exit, finish what was queued: an instance taken out of service must
    // not be left running without a record.
    if (stop_queue_.empty()) return;
    auto [cloud, id] = stop_queue_.front();
    stop_queue_.erase(stop_queue_.begin());
    lock.unlock();
    Status st = cloud->Stop(id, options_.stop_grace);
    if (!st.ok()) spdlog::warn("stopping instance {}: {}", id, st.ToString());
    lock.lock();
    stopping_.erase(id);
  }
}

void Reconciler::StopAsync(Cloud* cloud, const std::string& id) {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!stopping_.insert(id).second) return;
  stop_queue_.emplace_back(cloud, id);
  stop_cv_.notify_all();
}

std::string Reconciler::NewInstanceId(const std::string& endpoint) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08" PRIx64, static_cast<uint64_t>((rng() ^ ++id_counter_) & 0xffffffffu));
  // Instance ids are key segments and file names: the endpoint name is
  // [a-z0-9_-] already, and the suffix is hex.
  return endpoint + "-" + suffix;
}

void Reconciler::Transition(InstanceRecord& r, InstanceState to, const std::string& reason) {
  std::string from = InstanceStateName(r.state);
  r.state = to;
  r.state_since_ms = clock_.WallMillis();
  r.reason = reason;
  Status st = instances_.Put(r);
  if (!st.ok()) spdlog::warn("instance {}: cannot record state: {}", r.id, st.ToString());
  events_.Record(r.endpoint, "instance",
                 r.id + " (" + (r.address.empty() ? "no address" : r.address) + ") " + from + " → " +
                     InstanceStateName(to) + ": " + reason);
}

// Takes an instance out of existence: its record goes, its process or
// container is stopped in the background.
void Reconciler::Retire(InstanceRecord& r, const std::string& why) {
  Status st = instances_.Remove(r.endpoint, r.id);
  if (!st.ok()) spdlog::warn("instance {}: cannot remove record: {}", r.id, st.ToString());
  retired_.insert(r.id);
  if (r.cloud != "static") {
    for (auto& [kind, cloud] : clouds_) {
      if (r.cloud == cloud->Name()) StopAsync(cloud, r.id);
    }
  }
  events_.Record(r.endpoint, "remove", r.id + " removed: " + why);
}

Status Reconciler::RunOnce() {
  auto endpoints = registry_.List();
  if (!endpoints.ok()) return endpoints.status();
  std::vector<std::string> unreadable_instances;
  auto all_instances = instances_.ListAll(&unreadable_instances);
  if (!all_instances.ok()) return all_instances.status();

  cloud_view_.clear();
  retired_.clear();
  // Only the clouds something uses are asked (a host without dockerd is fine
  // as long as no endpoint wants docker); a failure is reported when it
  // starts or changes, not every round.
  std::set<std::string> in_use;
  for (const auto& rec : *endpoints) in_use.insert(CloudKindName(rec.config.cloud));
  for (const auto& inst : *all_instances) in_use.insert(inst.cloud);
  for (auto& [kind, cloud] : clouds_) {
    if (kind == CloudKind::kStatic || !in_use.count(cloud->Name())) continue;
    auto listed = cloud->List(options_.manager);
    std::string& last_error = cloud_errors_[cloud->Name()];
    if (!listed.ok()) {
      if (last_error != listed.status().message()) {
        events_.Record("", "error", std::string(cloud->Name()) + " cloud: " + listed.status().ToString());
        last_error = listed.status().message();
      }
      continue;
    }
    if (!last_error.empty()) {
      events_.Record("", "cloud", std::string(cloud->Name()) + " cloud reachable again");
      last_error.clear();
    }
    auto& view = cloud_view_[cloud->Name()];
    for (auto& info : *listed) view[info.instance_id] = info;
  }
  health_view_ = health_.Snapshot();

  std::map<std::string, EndpointRound> rounds;
  for (const auto& rec : *endpoints) {
    EndpointRound& round = rounds[rec.name];
    round.record = &rec;
    round.name = rec.name;
    auto it = clouds_.find(rec.config.cloud);
    round.cloud = it == clouds_.end() ? nullptr : it->second;
  }
  for (auto& inst : *all_instances) {
    if (inst.manager != options_.manager && inst.cloud != "static") continue;  // another host's
    EndpointRound& round = rounds[inst.endpoint];
    round.name = inst.endpoint;
    round.instances.push_back(inst);
  }

  // A cordoned host takes no new placements; what runs keeps running.
  auto cordon = IsCordoned(store_, options_.manager);
  if (cordon.ok()) cordoned_ = *cordon;
  slots_used_ = 0;
  for (const auto& inst : *all_instances) {
    if (inst.manager == options_.manager) slots_used_ += inst.slots;
  }

  // Never stop what cannot be read: an instance whose record does not
  // decode is left running (and said once), not taken for a stray.
  std::set<std::string> known_ids(unreadable_instances.begin(), unreadable_instances.end());
  for (const auto& id : unreadable_instances) {
    if (unreadable_reported_.insert(id).second) {
      events_.Record("", "error", "the record of instance " + id +
                                      " does not read; the instance is left running and untouched");
    }
  }
  for (auto it = unreadable_reported_.begin(); it != unreadable_reported_.end();) {
    it = known_ids.count(*it) ? std::next(it) : unreadable_reported_.erase(it);
  }
  std::vector<HealthTarget> targets;
  std::map<std::string, EndpointStatus> statuses;
  std::vector<EndpointRecord> served;
  for (auto& [name, round] : rounds) {
    ReconcileEndpoint(round);
    for (const auto& r : round.instances) {
      known_ids.insert(r.id);
      if (!round.record || !round.record->config_known || r.address.empty()) continue;
      if (r.state != InstanceState::kStarting && r.state != InstanceState::kActive &&
          !(r.state == InstanceState::kErrored && r.cloud == "static")) {
        continue;
      }
      const HealthConfig& h = round.record->config.health;
      HealthTarget t;
      t.id = r.id;
      t.endpoint = name;
      t.address = r.address;
      t.path = h.path;
      t.interval = h.interval;
      t.timeout = h.timeout;
      t.rise = h.rise;
      t.fall = h.fall;
      t.initially_healthy = r.state == InstanceState::kActive;
      targets.push_back(std::move(t));
    }
    if (round.record) {
      statuses[name] = round.status;
      if (round.record->config_known) served.push_back(*round.record);
    }
  }
  health_.SetTargets(targets);
  for (auto it = drain_seen_ms_.begin(); it != drain_seen_ms_.end();) {
    it = known_ids.count(it->first) && !retired_.count(it->first) ? std::next(it) : drain_seen_ms_.erase(it);
  }
  StopStrays(known_ids);
  PushNginx(served);
  int running_here = 0;
  for (const auto& inst : *all_instances) running_here += inst.manager == options_.manager && inst.cloud != "static";
  PublishManager(running_here);
  served.push_back(EndpointRecord{});  // the agent's own log ("")
  for (const auto& rec : served) {
    Status st = events_.Trim(rec.name);
    if (!st.ok()) spdlog::warn("event log trim {}: {}", rec.name, st.ToString());
  }
  // An endpoint nginx could not take (it keeps its previous config, if
  // any) says so in its status.
  for (const auto& [name, why] : nginx_.HeldBack()) {
    auto it = statuses.find(name);
    if (it == statuses.end()) continue;
    std::string note = "nginx holds it back: " + why;
    it->second.problem = it->second.problem.empty() ? note : it->second.problem + "; " + note;
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status_ = std::move(statuses);
  }
  return Status::Ok();
}

void Reconciler::ReconcileEndpoint(EndpointRound& round) {
  if (round.record == nullptr) {
    // Instances of an endpoint that no longer exists (its record vanished
    // while the agent was down): take them out.
    for (auto& r : round.instances) Retire(r, "its endpoint no longer exists");
    round.instances.clear();
    pushed_members_.erase(round.name);
    policy_.Forget(round.name);
    return;
  }
  const EndpointRecord& rec = *round.record;
  round.status.name = rec.name;
  round.status.state = EndpointStateName(rec.state);
  if (!rec.problem.empty()) {
    // A record that no longer reads keeps its instances and its site, with
    // its last good config, held at its count (as if paused) until a good
    // `manage` repairs it.
    round.status.state = "invalid";
    round.status.problem = rec.problem;
    if (invalid_reported_[rec.name] != rec.problem) {
      events_.Record(rec.name, "invalid",
                     "the stored endpoint does not read: " + rec.problem + "; " +
                         (rec.config_known ? "serving its last good configuration and holding its instances"
                                           : "no good configuration is known: its instances are left untouched") +
                         " until it is managed again with a good file");
      invalid_reported_[rec.name] = rec.problem;
    }
    if (!rec.config_known && rec.state == EndpointState::kDeleting) {
      // Unmanaged: nothing of it is served, so nothing needs draining.
      for (auto& r : round.instances) Retire(r, "its endpoint was unmanaged while its record did not read");
      round.instances.clear();
    }
    if (!rec.config_known && !(rec.state == EndpointState::kDeleting && round.instances.empty())) {
      for (const auto& r : round.instances) {
        if (r.state == InstanceState::kStarting || r.state == InstanceState::kActive) round.status.instances++;
        if (r.state == InstanceState::kActive) round.status.healthy++;
      }
      return;
    }
  } else if (invalid_reported_.erase(rec.name)) {
    events_.Record(rec.name, "invalid", "the stored endpoint reads again");
  }
  if (rec.config.cloud == CloudKind::kStatic) {
    ReconcileStatic(round);
  }
  CheckInstances(round);
  Scale(round);
  FinishDraining(round);

  for (const auto& r : round.instances) {
    if (r.state == InstanceState::kStarting) round.status.instances++;
    if (r.state == InstanceState::kActive) {
      round.status.instances++;
      round.status.healthy++;
    }
    if (r.state == InstanceState::kDraining) round.status.draining++;
  }
  round.status.last_decision = last_decision_[rec.name];

  if (rec.state == EndpointState::kDeleting && round.instances.empty()) {
    Status st = registry_.Remove(rec.name);
    if (st.ok()) {
      events_.Record(rec.name, "unmanage", "every instance is gone; endpoint removed");
      st = events_.Remove(rec.name);
      backoff_.erase(rec.name);
      last_decision_.erase(rec.name);
      invalid_reported_.erase(rec.name);
      if (options_.on_endpoint_removed) options_.on_endpoint_removed(rec.name);
      held_.erase(rec.name);
      policy_.Forget(rec.name);
    }
    if (!st.ok()) spdlog::warn("removing endpoint {}: {}", rec.name, st.ToString());
  }
}

void Reconciler::ReconcileStatic(EndpointRound& round) {
  const EndpointConfig& cfg = round.record->config;
  bool serving = round.record->state != EndpointState::kStopped && round.record->state != EndpointState::kDeleting;
  std::map<std::string, InstanceInfo> wanted;
  if (serving) {
    for (auto& info : StaticInstances(cfg)) wanted[info.instance_id] = info;
  }
  std::vector<InstanceRecord> kept;
  for (auto& r : round.instances) {
    if (wanted.count(r.id)) {
      wanted.erase(r.id);
      kept.push_back(r);
    } else {
      Status st = instances_.Remove(r.endpoint, r.id);
      if (!st.ok()) spdlog::warn("instance {}: {}", r.id, st.ToString());
      events_.Record(r.endpoint, "remove", r.id + " (" + r.address + ") is no longer a static instance");
    }
  }
  for (auto& [id, info] : wanted) {
    InstanceRecord r;
    r.id = id;
    r.endpoint = cfg.name;
    r.address = info.address;
    r.cloud = "static";
    r.manager = options_.manager;
    r.created_ms = clock_.WallMillis();
    r.state_since_ms = r.created_ms;
    r.reason = "static instance";
    Status st = instances_.Put(r);
    if (!st.ok()) continue;
    events_.Record(cfg.name, "instance", r.id + " (" + r.address + ") added: static instance, waiting for health");
    kept.push_back(r);
  }
  round.instances = std::move(kept);
}

void Reconciler::CheckInstances(EndpointRound& round) {
  const EndpointConfig& cfg = round.record->config;
  const int64_t now_ms = clock_.WallMillis();
  std::vector<InstanceRecord> kept;
  for (auto& r : round.instances) {
    bool is_static = r.cloud == "static";
    // Did the process or container go away?
    if (!is_static && r.state != InstanceState::kDraining && r.state != InstanceState::kErrored &&
        cloud_view_.count(r.cloud) > 0) {
      auto& view = cloud_view_[r.cloud];
      auto it = view.find(r.id);
      if (it != view.end() && it->second.pending) {
        kept.push_back(r);  // still being prepared; start_timeout below does not apply yet
        continue;
      }
      if (it != view.end() && it->second.running && r.address != it->second.address && !it->second.address.empty()) {
        r.address = it->second.address;  // known only once started (docker bridge ports)
        Status st = instances_.Put(r);
        if (!st.ok()) spdlog::warn("instance {}: {}", r.id, st.ToString());
      }
      if (it == view.end() || !it->second.running) {
        std::string why = it == view.end() ? "its " + r.cloud + " instance is gone"
                                           : "exited" + (it->second.exit_code >= 0
                                                             ? " with code " + std::to_string(it->second.exit_code)
                                                             : std::string()) +
                                                 (it->second.detail.empty() ? "" : " (" + it->second.detail + ")");
        if (r.state == InstanceState::kStarting) NoteStartFailure(cfg.name, why);
        Transition(r, InstanceState::kErrored, why);
        Retire(r, why + "; it will be replaced");
        continue;
      }
    }
    auto h = health_view_.find(r.id);
    const HealthReport* report = h == health_view_.end() ? nullptr : &h->second;
    switch (r.state) {
      case InstanceState::kStarting:
        if (report && report->state == HealthState::kHealthy) {
          backoff_.erase(r.endpoint);
          Transition(r, InstanceState::kActive,
                     "passed " + std::to_string(report->consecutive_successes) + " health check(s) (" +
                         report->last_result + "); taking traffic");
        } else if (!is_static && now_ms - r.state_since_ms > options_.start_timeout.count()) {
          std::string why = "did not pass a health check within " + FormatDuration(options_.start_timeout) +
                            (report && !report->last_result.empty() ? " (last: " + report->last_result + ")" : "");
          NoteStartFailure(cfg.name, why);
          Transition(r, InstanceState::kErrored, why);
          Retire(r, why + "; it will be replaced");
          continue;
        }
        break;
      case InstanceState::kActive:
        if (report && report->state == HealthState::kUnhealthy) {
          std::string why = "failed " + std::to_string(report->consecutive_failures) + " health check(s) (" +
                            report->last_result + ")";
          if (is_static) {
            Transition(r, InstanceState::kErrored, why + "; out of the upstream until it recovers");
          } else {
            Transition(r, InstanceState::kErrored, why);
            Retire(r, why + "; it will be replaced");
            continue;
          }
        }
        break;
      case InstanceState::kErrored:
        // Only static instances stay errored; they rejoin when healthy again.
        if (is_static && report && report->state == HealthState::kHealthy) {
          Transition(r, InstanceState::kActive, "recovered (" + report->last_result + "); back in the upstream");
        } else if (!is_static) {
          Retire(r, "errored: " + r.reason);
          continue;
        }
        break;
      case InstanceState::kDraining:
        break;
    }
    kept.push_back(r);
  }
  round.instances = std::move(kept);
}

// An instance that failed before it ever took traffic counts as a failed
// launch: the next launches back off exponentially instead of storming.
void Reconciler::NoteStartFailure(const std::string& endpoint, const std::string& why) {
  Backoff& bo = backoff_[endpoint];
  bo.failures++;
  int64_t delay = std::min<int64_t>(60000, 1000LL << std::min(bo.failures - 1, 6));
  bo.next_try = clock_.Now() + Duration(delay);
  bo.last_error = why;
}

void Reconciler::Scale(EndpointRound& round) {
  const EndpointRecord& rec = *round.record;
  const EndpointConfig& cfg = rec.config;
  if (cfg.cloud == CloudKind::kStatic) {
    round.status.target = static_cast<int>(cfg.static_instances.size());
    return;
  }
  int live = 0;
  std::vector<std::string> active;
  for (const auto& r : round.instances) {
    if (r.state == InstanceState::kStarting || r.state == InstanceState::kActive) live++;
    if (r.state == InstanceState::kActive) active.push_back(r.address);
  }
  int target = live;
  std::string explanation;
  bool held = false;
  // An endpoint whose record does not read is held as if paused.
  EndpointState state = rec.state;
  if (!rec.problem.empty() && state == EndpointState::kRunning) state = EndpointState::kPaused;
  switch (state) {
    case EndpointState::kStopped:
    case EndpointState::kDeleting:
      target = 0;
      round.status.range_min = 0;
      round.status.range_max = 0;
      break;
    case EndpointState::kPaused: {
      // Paused: hold the count, but keep it inside [min, max] so failed
      // instances are still replaced.
      target = std::max(live, cfg.scaling.min_instances);
      round.status.range_min = cfg.scaling.min_instances;
      round.status.range_max = cfg.scaling.max_instances;
      break;
    }
    case EndpointState::kRunning: {
      ScalingPolicy::Decision d = policy_.Decide(cfg, live, active);
      target = d.target;
      round.status.range_min = d.range_min;
      round.status.range_max = d.range_max;
      round.status.has_range = d.has_range;
      explanation = d.explanation;
      held = d.held;
      break;
    }
  }
  round.status.target = target;
  int launched = 0, drained = 0;
  if (live < target) {
    launched = Launch(round, RampLimitedStep(live, target, cfg.scaling.ramp_limit));
  } else if (live > target) {
    bool all_at_once = rec.state == EndpointState::kStopped || rec.state == EndpointState::kDeleting;
    int n = all_at_once ? live - target : -RampLimitedStep(live, target, cfg.scaling.ramp_limit);
    drained = Drain(round, n, all_at_once ? std::string("endpoint ") + EndpointStateName(rec.state)
                                          : "scaling down to " + std::to_string(target));
  }
  if (launched + drained > 0) CountEvent("reactor_endpoint_scale_events_total", {{"endpoint", rec.name}, {"direction", launched > 0 ? "up" : "down"}}, launched + drained);
  // Every scaling action is logged with the numbers behind it; a decision
  // that holds back (stabilisation) is logged once when it starts holding.
  if (!explanation.empty()) {
    std::string text = explanation;
    if (launched > 0) text += ": launching " + std::to_string(launched);
    if (drained > 0) text += ": draining " + std::to_string(drained);
    bool was_held = held_.count(rec.name) > 0;
    if (held) held_.insert(rec.name); else held_.erase(rec.name);
    if (launched > 0 || drained > 0 || (held && !was_held)) events_.Record(rec.name, "scale", text);
    last_decision_[rec.name] = text;
  }
}

int Reconciler::Launch(EndpointRound& round, int count) {
  const EndpointConfig& cfg = round.record->config;
  int launched = 0;
  if (round.cloud == nullptr) {
    round.status.problem = std::string("no ") + CloudKindName(cfg.cloud) + " cloud on this host";
    return launched;
  }
  Backoff& bo = backoff_[cfg.name];
  if (bo.failures > 0 && clock_.Now() < bo.next_try) {
    round.status.problem = "launches backing off after " + std::to_string(bo.failures) +
                           " failure(s): " + bo.last_error;
    return launched;
  }
  if (cordoned_ && count > 0) {
    std::string why = "manager " + options_.manager + " is cordoned: no new placements";
    if (waiting_for_slots_.insert(cfg.name).second) events_.Record(cfg.name, "slots", why + "; waiting");
    round.status.problem = why;
    return launched;
  }
  for (int i = 0; i < count; ++i) {
    int cost = cfg.Slots();
    if (slots_used_ + cost > options_.slots) {
      std::string why = "no free slots: " + std::to_string(slots_used_) + " of " + std::to_string(options_.slots) +
                        " used, an instance needs " + std::to_string(cost);
      if (waiting_for_slots_.insert(cfg.name).second) events_.Record(cfg.name, "slots", why + "; waiting");
      round.status.problem = why;
      return launched;
    }
    InstanceRecord r;
    r.id = NewInstanceId(cfg.name);
    r.endpoint = cfg.name;
    r.manager = options_.manager;
    r.cloud = round.cloud->Name();
    r.slots = cost;
    r.created_ms = clock_.WallMillis();
    r.state_since_ms = r.created_ms;
    r.reason = "launching";
    // The record goes first: if the agent dies mid-launch, the next round
    // finds a record without a running instance and cleans both up.
    Status st = instances_.Put(r);
    if (!st.ok()) {
      round.status.problem = "cannot record instance: " + st.ToString();
      return launched;
    }
    LaunchRequest req;
    req.instance_id = r.id;
    req.manager = options_.manager;
    req.endpoint = &cfg;
    auto info = round.cloud->Launch(req);
    if (!info.ok()) {
      (void)instances_.Remove(r.endpoint, r.id);
      NoteStartFailure(cfg.name, info.status().message());
      events_.Record(cfg.name, "launch",
                     "launch failed: " + info.status().message() + "; retrying in " +
                         FormatDuration(std::chrono::duration_cast<Duration>(bo.next_try - clock_.Now())));
      round.status.problem = "launch failed: " + bo.last_error;
      return launched;
    }
    r.address = info->address;
    r.reason = info->pending ? "preparing: " + info->detail : "launched, waiting for health";
    st = instances_.Put(r);
    if (!st.ok()) spdlog::warn("instance {}: {}", r.id, st.ToString());
    slots_used_ += cost;
    round.instances.push_back(r);
    waiting_for_slots_.erase(cfg.name);
    ++launched;
  }
  return launched;
}

int Reconciler::Drain(EndpointRound& round, int count, const std::string& why) {
  // Starting instances go first (they serve nothing yet), then the newest
  // active ones.
  std::vector<InstanceRecord*> order;
  for (auto& r : round.instances) {
    if (r.state == InstanceState::kStarting) order.push_back(&r);
  }
  std::vector<InstanceRecord*> active;
  for (auto& r : round.instances) {
    if (r.state == InstanceState::kActive) active.push_back(&r);
  }
  std::sort(active.begin(), active.end(),
            [](const InstanceRecord* a, const InstanceRecord* b) { return a->created_ms > b->created_ms; });
  order.insert(order.end(), active.begin(), active.end());
  int n = std::min<int>(count, static_cast<int>(order.size()));
  for (int i = 0; i < n; ++i) {
    Transition(*order[i], InstanceState::kDraining, why + "; out of the upstream, waiting for open connections");
  }
  return n;
}

void Reconciler::FinishDraining(EndpointRound& round) {
  const EndpointConfig& cfg = round.record->config;
  const int64_t now_ms = clock_.WallMillis();
  std::vector<InstanceRecord> kept;
  for (auto& r : round.instances) {
    if (r.state != InstanceState::kDraining) {
      kept.push_back(r);
      continue;
    }
    // Draining counts from the first round that saw it: only that round's
    // push takes the instance out of nginx. A drain set elsewhere (the API)
    // may be older than that push, and an instance stopped before nginx
    // heard of it would fail the requests sent to it meanwhile.
    auto seen = drain_seen_ms_.emplace(r.id, now_ms).first;
    int64_t drained_for = now_ms - std::max(r.state_since_ms, seen->second);
    if (drained_for < options_.min_drain.count()) {
      kept.push_back(r);
      continue;
    }
    int open = r.address.empty() ? 0 : active_connections_(r.address);
    if (open == 0) {
      Retire(r, "drained: no open connections after " + FormatDuration(Duration(drained_for)));
    } else if (drained_for >= cfg.scaling.drain_timeout.count()) {
      Retire(r, "drain_timeout " + FormatDuration(cfg.scaling.drain_timeout) + " passed with " +
                    std::to_string(open) + " open connection(s)");
    } else {
      kept.push_back(r);
    }
  }
  round.instances = std::move(kept);
}

void Reconciler::StopStrays(const std::set<std::string>& known_ids) {
  for (auto& [kind, cloud] : clouds_) {
    auto view = cloud_view_.find(cloud->Name());
    if (view == cloud_view_.end()) continue;
    for (auto& [id, info] : view->second) {
      if (known_ids.count(id) || retired_.count(id)) continue;
      {
        std::lock_guard<std::mutex> lock(stop_mu_);
        if (stopping_.count(id)) continue;
      }
      events_.Record(info.endpoint, "remove",
                     id + " (" + info.address + ") has no instance record: stopping the stray");
      StopAsync(cloud, id);
    }
  }
}

void Reconciler::PushNginx(const std::vector<EndpointRecord>& endpoints) {
  std::vector<EndpointConfig> sites;
  // Scale to zero: only an endpoint that may launch now holds requests.
  for (const auto& rec : endpoints) sites.push_back(ServedConfig(rec));
  Status st = nginx_.ApplySites(sites);
  if (!st.ok()) spdlog::warn("nginx: {}", st.ToString());

  std::set<std::string> names;
  for (const auto& rec : endpoints) {
    names.insert(rec.name);
    std::vector<Member> members;
    auto list = instances_.List(rec.name);
    if (!list.ok()) continue;
    for (const auto& r : *list) {
      if (r.state == InstanceState::kActive && !r.address.empty()) {
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

void Reconciler::PublishManager(int instances) {
  if (options_.membership != nullptr) options_.membership->Update(slots_used_, instances);
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
