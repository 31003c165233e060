#include "agent/runtime/endpoint_owner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <random>

#include "agent/cloud/static_cloud.h"
#include "agent/common/units.h"
#include "agent/store/keys.h"
#include "agent/telemetry/counter_registry.h"

namespace reactor {

namespace {

constexpr int kPlaceAttempts = 3;

bool Live(const InstanceRecord& r) { return r.state == InstanceState::kStarting || r.state == InstanceState::kActive; }

const InstanceRecord* FindInstance(const EndpointRound& er, const std::string& id) {
  for (const auto& r : er.instances) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

}  // namespace

EndpointOwner::EndpointOwner(Options options, Store& store, EventLog& events, EndpointRegistry& registry,
                             OwnerElection& election, ScalingPolicy& policy, Clock& clock)
    : options_(std::move(options)),
      store_(store),
      events_(events),
      registry_(registry),
      election_(election),
      policy_(policy),
      clock_(clock) {}

std::string EndpointOwner::NewInstanceId(const std::string& endpoint) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08" PRIx64, static_cast<uint64_t>((rng() ^ ++id_counter_) & 0xffffffffu));
  // Instance ids are key segments and file names: the endpoint name is
  // [a-z0-9_-] already, and the suffix is hex.
  return endpoint + "-" + suffix;
}

bool EndpointOwner::Ok(const std::string& endpoint, const Status& st) {
  if (st.IsFencedOut()) {
    election_.Lost(endpoint, st.message());
    return false;
  }
  if (!st.ok() && !st.IsConflict()) spdlog::warn("endpoint {}: {}", endpoint, st.ToString());
  return true;
}

void EndpointOwner::Forget(const std::set<std::string>& endpoints) {
  auto prune = [&](auto& m) {
    for (auto it = m.begin(); it != m.end();) it = endpoints.count(it->first) ? std::next(it) : m.erase(it);
  };
  prune(backoff_);
  prune(last_decision_);
  prune(waiting_);
  prune(moving_);
  prune(rr_cursor_);
  prune(invalid_reported_);
  for (auto it = held_.begin(); it != held_.end();) it = endpoints.count(*it) ? std::next(it) : held_.erase(it);
}

void EndpointOwner::Decide(Round& round, EndpointRound& er, const Fence& fence) {
  const EndpointRecord& rec = *er.record;
  er.decided = true;
  if (!rec.problem.empty()) {
    // A record that no longer reads keeps its instances and its site, with
    // its last good config, held at its count (as if paused) until a good
    // `manage` repairs it.
    if (invalid_reported_[rec.name] != rec.problem) {
      events_.Record(rec.name, "invalid",
                     "the stored endpoint does not read: " + rec.problem + "; " +
                         (rec.config_known ? "serving its last good configuration and holding its instances"
                                           : "no good configuration is known: its instances are left untouched") +
                         " until it is managed again with a good file");
      invalid_reported_[rec.name] = rec.problem;
    }
    if (!rec.config_known) {
      if (rec.state == EndpointState::kDeleting) {
        // Unmanaged: nothing of it is served, so nothing needs draining.
        std::vector<InstanceRecord> kept;
        for (auto& r : er.instances) {
          Status st = ReleaseInstance(store_, r, &fence);
          if (!Ok(rec.name, st)) return;
          if (st.ok()) {
            events_.Record(rec.name, "remove",
                           r.id + " removed: its endpoint was unmanaged while its record did not read");
          } else {
            kept.push_back(r);
          }
        }
        er.instances = std::move(kept);
        if (er.instances.empty()) {
          Status st = registry_.Remove(rec.name);
          if (st.ok()) events_.Record(rec.name, "unmanage", "every instance is gone; endpoint removed");
        }
      }
      return;
    }
  } else if (invalid_reported_.erase(rec.name)) {
    events_.Record(rec.name, "invalid", "the stored endpoint reads again");
  }
  if (!ReplaceLost(round, er, fence)) return;
  if (rec.config.cloud == CloudKind::kStatic && !ReconcileStatic(er, fence)) return;
  if (!Scale(round, er, fence)) return;
  er.status.last_decision = last_decision_[rec.name];

  if (rec.state == EndpointState::kDeleting && er.instances.empty()) {
    Status st = registry_.Remove(rec.name);
    if (st.ok()) {
      events_.Record(rec.name, "unmanage", "every instance is gone; endpoint removed");
      // Its decided status and its owner key go with it.
      Txn t;
      t.compares.push_back(fence.Check());
      t.success = {Op::Delete(EndpointStatusKey(rec.name)), Op::Delete(fence.key)};
      (void)store_.Commit(t);
      st = events_.Remove(rec.name);
      backoff_.erase(rec.name);
      last_decision_.erase(rec.name);
      invalid_reported_.erase(rec.name);
      held_.erase(rec.name);
      if (options_.on_endpoint_removed) options_.on_endpoint_removed(rec.name);
      policy_.Forget(rec.name);
    }
    if (!st.ok()) spdlog::warn("removing endpoint {}: {}", rec.name, st.ToString());
  }
}

// Instances that failed, and those whose host is gone, are taken out (their
// slots given back) so that Scale replaces them.
bool EndpointOwner::ReplaceLost(Round& round, EndpointRound& er, const Fence& fence) {
  // Kept records stay where they are (no copy); an early return leaves
  // every record as it was.
  std::vector<bool> drop(er.instances.size(), false);
  for (size_t i = 0; i < er.instances.size(); ++i) {
    InstanceRecord& r = er.instances[i];
    if (r.cloud == "static") continue;
    std::string why;
    if (!round.view.IsUp(r.manager)) {
      why = "its host " + (r.manager.empty() ? std::string("(none)") : r.manager) + " is gone";
    } else if (r.state == InstanceState::kErrored) {
      why = "errored: " + r.reason;
    } else {
      continue;
    }
    Status st = ReleaseInstance(store_, r, &fence);
    if (!Ok(er.name, st)) return false;
    if (!st.ok()) continue;
    if (r.state == InstanceState::kErrored && r.activated_ms == 0)
      NoteStartFailure(er.name, r.state_since_ms, r.reason);
    events_.Record(er.name, "remove", r.id + " removed: " + why + "; it will be replaced");
    drop[i] = true;
  }
  EraseDropped(er.instances, drop);
  return true;
}

bool EndpointOwner::ReconcileStatic(EndpointRound& er, const Fence& fence) {
  const EndpointConfig& cfg = er.record->config;
  bool serving = er.record->state != EndpointState::kStopped && er.record->state != EndpointState::kDeleting;
  std::map<std::string, InstanceInfo> wanted;
  if (serving) {
    for (auto& info : StaticInstances(cfg)) wanted[info.instance_id] = info;
  }
  // As in ReplaceLost: kept records are not copied, and an early return
  // leaves them as they were.
  std::vector<bool> drop(er.instances.size(), false);
  std::vector<InstanceRecord> added;
  for (size_t i = 0; i < er.instances.size(); ++i) {
    InstanceRecord& r = er.instances[i];
    if (!wanted.count(r.id)) {
      Status st = ReleaseInstance(store_, r, &fence);
      if (!Ok(er.name, st)) return false;
      if (st.ok()) {
        events_.Record(r.endpoint, "remove", r.id + " (" + r.address + ") is no longer a static instance");
        drop[i] = true;
      }
      continue;
    }
    wanted.erase(r.id);
    if (r.manager != options_.manager) {
      // Static instances are checked by their owner's host: it moved here.
      InstanceRecord moved = r;
      moved.manager = options_.manager;
      Status st = UpdateInstance(store_, moved, &fence);
      if (!Ok(er.name, st)) return false;
      if (st.ok()) r = std::move(moved);
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
    Status st = UpdateInstance(store_, r, &fence);  // mod revision 0: it must be absent
    if (!Ok(er.name, st)) return false;
    if (!st.ok()) continue;
    events_.Record(cfg.name, "instance", r.id + " (" + r.address + ") added: static instance, waiting for health");
    added.push_back(std::move(r));
  }
  EraseDropped(er.instances, drop);
  for (auto& r : added) er.instances.push_back(std::move(r));
  return true;
}

// An instance that failed before it ever took traffic counts as a failed
// launch: the next launches back off exponentially instead of storming.
void EndpointOwner::NoteStartFailure(const std::string& endpoint, int64_t at_ms, const std::string& why) {
  Backoff& bo = backoff_[endpoint];
  bo.failures++;
  int64_t delay = std::min<int64_t>(60000, 1000LL << std::min(bo.failures - 1, 6));
  bo.next_try_ms = at_ms + delay;
  bo.last_error = why;
}

bool EndpointOwner::Scale(Round& round, EndpointRound& er, const Fence& fence) {
  const EndpointRecord& rec = *er.record;
  const EndpointConfig& cfg = rec.config;
  if (cfg.cloud == CloudKind::kStatic) {
    er.status.target = static_cast<int>(cfg.static_instances.size());
    return true;
  }
  int live = 0;
  std::vector<std::string> active;
  for (const auto& r : er.instances) {
    if (Live(r)) live++;
    if (r.state == InstanceState::kActive) active.push_back(r.address);
  }
  // A replacement started to move an instance off a draining host is not
  // one more instance for the policy.
  auto moving = moving_.find(rec.name);
  if (moving != moving_.end()) {
    const InstanceRecord* it = FindInstance(er, moving->second);
    if (it == nullptr || !Live(*it)) {
      moving_.erase(moving);
    } else {
      live--;
    }
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
      er.status.range_min = 0;
      er.status.range_max = 0;
      break;
    case EndpointState::kPaused:
      // Paused: hold the count, but keep it inside [min, max] so failed
      // instances are still replaced.
      target = std::max(live, cfg.scaling.min_instances);
      er.status.range_min = cfg.scaling.min_instances;
      er.status.range_max = cfg.scaling.max_instances;
      break;
    case EndpointState::kRunning: {
      ScalingPolicy::Decision d = policy_.Decide(cfg, live, active);
      target = d.target;
      er.status.range_min = d.range_min;
      er.status.range_max = d.range_max;
      er.status.has_range = d.has_range;
      explanation = d.explanation;
      held = d.held;
      break;
    }
  }
  er.status.target = target;
  int launched = 0, drained = 0;
  bool fenced = false;
  if (live < target) {
    launched = Place(round, er, fence, RampLimitedStep(live, target, cfg.scaling.ramp_limit), &fenced);
  } else if (live > target) {
    bool all_at_once = rec.state == EndpointState::kStopped || rec.state == EndpointState::kDeleting;
    int n = all_at_once ? live - target : -RampLimitedStep(live, target, cfg.scaling.ramp_limit);
    drained = Drain(round, er, fence, n,
                    all_at_once ? std::string("endpoint ") + EndpointStateName(rec.state)
                                : "scaling down to " + std::to_string(target),
                    &fenced);
  } else if (!MoveOffDrainingHosts(round, er, fence, target)) {
    return false;
  }
  if (fenced) return false;
  if (launched + drained > 0) {
    CountEvent("reactor_endpoint_scale_events_total",
               {{"endpoint", rec.name}, {"direction", launched > 0 ? "up" : "down"}}, launched + drained);
  }
  // Every scaling action is logged with the numbers behind it; a decision
  // that holds back (stabilisation) is logged once when it starts holding.
  if (!explanation.empty()) {
    std::string text = explanation;
    if (launched > 0) text += ": launching " + std::to_string(launched);
    if (drained > 0) text += ": draining " + std::to_string(drained);
    bool was_held = held_.count(rec.name) > 0;
    if (held)
      held_.insert(rec.name);
    else
      held_.erase(rec.name);
    if (launched > 0 || drained > 0 || (held && !was_held)) events_.Record(rec.name, "scale", text);
    last_decision_[rec.name] = text;
  }
  return true;
}

// `reactor managers drain`: one instance at a time, a replacement elsewhere
// first, and the old one drained only once the new one is healthy.
bool EndpointOwner::MoveOffDrainingHosts(Round& round, EndpointRound& er, const Fence& fence, int target) {
  auto on_draining_host = [&](const InstanceRecord& r) {
    auto h = round.view.hosts.find(r.manager);
    return r.cloud != "static" && Live(r) && h != round.view.hosts.end() && h->second.draining;
  };
  bool fenced = false;
  auto moving = moving_.find(er.name);
  if (moving != moving_.end()) {
    const InstanceRecord* it = FindInstance(er, moving->second);
    if (it == nullptr || it->state != InstanceState::kActive) return true;  // still starting
    moving_.erase(moving);
    Drain(round, er, fence, 1, "its host is being drained; its replacement is healthy", &fenced);
    return !fenced;
  }
  if (target <= 0 || !election_.MayDestroy(er.name)) return true;
  if (std::none_of(er.instances.begin(), er.instances.end(), on_draining_host)) return true;
  if (std::any_of(er.instances.begin(), er.instances.end(),
                  [](const InstanceRecord& r) { return r.state == InstanceState::kStarting; })) {
    return true;  // let what starts become healthy first
  }
  if (Place(round, er, fence, 1, &fenced) == 1) {
    moving_[er.name] = er.instances.back().id;
    events_.Record(
        er.name, "scale",
        er.instances.back().id + " on " + er.instances.back().manager + " replaces an instance on a draining host");
  }
  return !fenced;
}

int EndpointOwner::Place(Round& round, EndpointRound& er, const Fence& fence, int count, bool* fenced) {
  const EndpointConfig& cfg = er.record->config;
  Backoff& bo = backoff_[cfg.name];
  if (bo.failures > 0 && clock_.WallMillis() < bo.next_try_ms) {
    er.status.problem = "launches backing off after " + std::to_string(bo.failures) + " failure(s): " + bo.last_error;
    return 0;
  }
  const std::string driver = CloudKindName(cfg.cloud);
  std::map<std::string, int> per_host;
  for (const auto& r : er.instances) {
    if (Live(r)) per_host[r.manager]++;
  }
  int placed = 0;
  for (int i = 0; i < count; ++i) {
    InstanceRecord r;
    r.id = NewInstanceId(cfg.name);
    r.endpoint = cfg.name;
    r.cloud = driver;
    r.slots = cfg.Slots();
    r.created_ms = clock_.WallMillis();
    r.state_since_ms = r.created_ms;
    Status st = Status::Conflict("not placed");
    std::string why;
    for (int attempt = 0; attempt < kPlaceAttempts && st.IsConflict(); ++attempt) {
      auto host = ChooseHost(round.view, cfg.scaling.placement, driver, r.slots, per_host, &rr_cursor_[cfg.name], &why);
      if (!host) break;
      r.manager = *host;
      r.reason = "assigned to " + *host + ", launching";
      // The record goes first: the host's actuator launches what its
      // records say, and a launch that dies half-way leaves a record to
      // clean up, never an instance nobody knows.
      st = ReserveInstance(store_, round.view, fence, r);
    }
    if (st.IsFencedOut()) {
      election_.Lost(cfg.name, st.message());
      *fenced = true;
      return placed;
    }
    if (!st.ok()) {
      if (why.empty()) why = st.message();
      if (waiting_[cfg.name] != why) events_.Record(cfg.name, "slots", why + "; waiting");
      waiting_[cfg.name] = why;
      er.status.problem = why;
      return placed;
    }
    per_host[r.manager]++;
    er.instances.push_back(r);
    waiting_.erase(cfg.name);
    ++placed;
  }
  return placed;
}

int EndpointOwner::Drain(Round& round, EndpointRound& er, const Fence& fence, int count, const std::string& why,
                         bool* fenced) {
  if (!election_.MayDestroy(er.name)) {
    er.status.problem = "new owner: no scale-down until the takeover wait has passed";
    return 0;
  }
  auto draining_host = [&](const InstanceRecord* r) {
    auto h = round.view.hosts.find(r->manager);
    return h != round.view.hosts.end() && h->second.draining;
  };
  // Starting instances go first (they serve nothing yet), then active ones
  // on draining hosts, then the newest active ones.
  std::vector<InstanceRecord*> order;
  for (auto& r : er.instances) {
    if (r.state == InstanceState::kStarting) order.push_back(&r);
  }
  std::vector<InstanceRecord*> active;
  for (auto& r : er.instances) {
    if (r.state == InstanceState::kActive) active.push_back(&r);
  }
  std::sort(active.begin(), active.end(), [&](const InstanceRecord* a, const InstanceRecord* b) {
    if (draining_host(a) != draining_host(b)) return draining_host(a);
    return a->created_ms > b->created_ms;
  });
  order.insert(order.end(), active.begin(), active.end());
  int n = 0;
  for (InstanceRecord* r : order) {
    if (n >= count) break;
    InstanceRecord next = *r;
    std::string text =
        SetState(clock_, next, InstanceState::kDraining, why + "; out of the upstream, waiting for open connections");
    Status st = UpdateInstance(store_, next, &fence);
    if (st.IsFencedOut()) {
      election_.Lost(er.name, st.message());
      *fenced = true;
      return n;
    }
    if (!st.ok()) continue;
    events_.Record(er.name, "instance", text);
    *r = next;
    ++n;
  }
  return n;
}

}  // namespace reactor
