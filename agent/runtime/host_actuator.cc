#include "agent/runtime/host_actuator.h"

#include <spdlog/spdlog.h>

#include "agent/cluster/cluster_view.h"
#include "agent/common/units.h"

namespace reactor {

HostActuator::HostActuator(Options options, Store& store, EventLog& events, HealthSource& health,
                           std::map<CloudKind, Cloud*> clouds, Clock& clock,
                           std::function<int(const std::string&)> active_connections)
    : options_(std::move(options)),
      store_(store),
      events_(events),
      health_(health),
      clouds_(std::move(clouds)),
      clock_(clock),
      active_connections_(std::move(active_connections)) {
  stop_thread_ = std::thread([this] { StopWorker(); });
}

HostActuator::~HostActuator() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_worker_exit_ = true;
  }
  stop_cv_.notify_all();
  stop_thread_.join();
}

void HostActuator::StopWorker() {
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

void HostActuator::StopAsync(Cloud* cloud, const std::string& id) {
  if (cloud == nullptr) return;
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!stopping_.insert(id).second) return;
  stop_queue_.emplace_back(cloud, id);
  stop_cv_.notify_all();
}

bool HostActuator::Stopping(const std::string& id) const {
  std::lock_guard<std::mutex> lock(stop_mu_);
  return stopping_.count(id) > 0;
}

Cloud* HostActuator::CloudNamed(const std::string& name) const {
  for (const auto& [kind, cloud] : clouds_) {
    if (kind != CloudKind::kStatic && name == cloud->Name()) return cloud;
  }
  return nullptr;
}

std::vector<std::string> HostActuator::Drivers() const {
  std::vector<std::string> out;
  for (const auto& [kind, cloud] : clouds_) {
    if (kind != CloudKind::kStatic) out.push_back(cloud->Name());
  }
  return out;
}

void HostActuator::Observe(const Round& round) {
  cloud_view_.clear();
  // Only the clouds something here uses are asked (a host without dockerd
  // is fine as long as nothing assigned here wants docker); a failure is
  // reported when it starts or changes, not every round.
  std::set<std::string> in_use;
  for (const auto& rec : round.endpoints) in_use.insert(CloudKindName(rec.config.cloud));
  for (const auto& [name, er] : round.by_endpoint) {
    for (const auto& r : er.instances) {
      if (Mine(r)) in_use.insert(r.cloud);
    }
  }
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
}

int64_t HostActuator::StartingFor(const InstanceRecord& r) {
  auto seen = start_seen_.find(r.id);
  if (seen == start_seen_.end()) {
    seen = start_seen_.emplace(r.id, StartSeen{clock_.Now(), clock_.WallMillis() - r.state_since_ms}).first;
  }
  return seen->second.elapsed_ms + (clock_.Now() - seen->second.at).count();
}

void HostActuator::Check(Round& round) {
  const int64_t now_ms = clock_.WallMillis();
  for (auto& [name, er] : round.by_endpoint) {
    for (auto& r : er.instances) {
      if (!Mine(r) || (er.record != nullptr && !er.record->config_known)) continue;
      const bool is_static = r.cloud == "static";
      InstanceRecord before = r;
      bool changed = false;
      std::string text;  // the transition, logged once written
      Cloud* cloud = is_static ? nullptr : CloudNamed(r.cloud);
      // Did the process or container go away?
      if (!is_static && (r.state == InstanceState::kStarting || r.state == InstanceState::kActive) &&
          cloud_view_.count(r.cloud) > 0) {
        auto& view = cloud_view_[r.cloud];
        auto it = view.find(r.id);
        if (it != view.end() && it->second.pending) continue;  // being prepared; no start timeout yet
        const bool not_launched_yet = it == view.end() && r.address.empty() && !launched_.count(r.id);
        if (not_launched_yet) continue;  // Act launches it
        if (it != view.end() && it->second.running && !it->second.address.empty() && r.address != it->second.address) {
          r.address = it->second.address;  // known only once started (docker bridge ports)
          changed = true;
        }
        if (it == view.end() || !it->second.running) {
          std::string why = it == view.end()
                                ? "its " + r.cloud + " instance is gone"
                                : "exited" +
                                      (it->second.exit_code >= 0 ? " with code " + std::to_string(it->second.exit_code)
                                                                 : std::string()) +
                                      (it->second.detail.empty() ? "" : " (" + it->second.detail + ")");
          text = SetState(clock_, r, InstanceState::kErrored, why);
          if (it != view.end()) StopAsync(cloud, r.id);
          if (UpdateInstance(store_, r, nullptr).ok())
            events_.Record(r.endpoint, "instance", text);
          else
            r = before;
          continue;
        }
      }
      auto h = health_view_.find(HealthTargetId(r));
      const HealthReport* report = h == health_view_.end() ? nullptr : &h->second;
      switch (r.state) {
        case InstanceState::kStarting:
          if (report && report->state == HealthState::kHealthy) {
            if (r.activated_ms == 0) r.activated_ms = now_ms;
            text = SetState(clock_, r, InstanceState::kActive,
                            "passed " + std::to_string(report->consecutive_successes) + " health check(s) (" +
                                report->last_result + "); taking traffic");
            changed = true;
          } else if (!is_static && StartingFor(r) > options_.start_timeout.count()) {
            std::string why = "did not pass a health check within " + FormatDuration(options_.start_timeout) +
                              (report && !report->last_result.empty() ? " (last: " + report->last_result + ")" : "");
            text = SetState(clock_, r, InstanceState::kErrored, why);
            StopAsync(cloud, r.id);
            changed = true;
          }
          break;
        case InstanceState::kActive:
          if (report && report->state == HealthState::kUnhealthy) {
            std::string why = "failed " + std::to_string(report->consecutive_failures) + " health check(s) (" +
                              report->last_result + ")";
            text = SetState(clock_, r, InstanceState::kErrored,
                            is_static ? why + "; out of the upstream until it recovers" : why);
            StopAsync(cloud, r.id);
            changed = true;
          }
          break;
        case InstanceState::kErrored:
          // Only static instances stay errored; they rejoin when healthy again.
          if (is_static && report && report->state == HealthState::kHealthy) {
            text = SetState(clock_, r, InstanceState::kActive,
                            "recovered (" + report->last_result + "); back in the upstream");
            changed = true;
          }
          break;
        case InstanceState::kDraining: break;
      }
      if (!changed) continue;
      Status st = UpdateInstance(store_, r, nullptr);
      if (st.ok() && !text.empty()) events_.Record(r.endpoint, "instance", text);
      if (!st.ok()) {
        // Someone changed it first (the owner drained or removed it): the
        // next round starts from what they wrote.
        if (!st.IsConflict()) spdlog::warn("instance {}: {}", r.id, st.ToString());
        r = before;
      }
    }
  }
}

void HostActuator::Launch(EndpointRound& er, InstanceRecord& r) {
  Cloud* cloud = CloudNamed(r.cloud);
  InstanceRecord before = r;
  std::string failure;
  if (cloud == nullptr) {
    failure = "no " + r.cloud + " cloud on " + options_.manager;
  } else {
    LaunchRequest req;
    req.instance_id = r.id;
    req.manager = options_.manager;
    req.endpoint = &er.record->config;
    auto info = cloud->Launch(req);
    if (info.ok()) {
      launched_.insert(r.id);
      r.address = info->address;
      r.reason = info->pending ? "preparing: " + info->detail : "launched, waiting for health";
      r.state_since_ms = clock_.WallMillis();  // the start timeout counts from the launch
      Status st = UpdateInstance(store_, r, nullptr);
      if (!st.ok()) {
        // The owner took it back meanwhile: what runs without a record is
        // stopped as a stray next round.
        spdlog::info("instance {}: launched, but its record changed: {}", r.id, st.ToString());
        r = before;
      }
      return;
    }
    failure = info.status().message();
  }
  events_.Record(er.name, "launch", "launch of " + r.id + " on " + options_.manager + " failed: " + failure);
  std::string text = SetState(clock_, r, InstanceState::kErrored, "launch failed: " + failure);
  if (UpdateInstance(store_, r, nullptr).ok())
    events_.Record(r.endpoint, "instance", text);
  else
    r = before;
}

void HostActuator::FinishDraining(EndpointRound& er) {
  std::vector<bool> drop(er.instances.size(), false);
  for (size_t i = 0; i < er.instances.size(); ++i) {
    InstanceRecord& r = er.instances[i];
    if (!Mine(r) || r.state != InstanceState::kDraining) {
      continue;
    }
    // Draining counts from the first round that saw it: only that round's
    // push takes the instance out of this host's nginx. A drain written
    // elsewhere may be older than that push, and an instance stopped before
    // nginx heard of it would fail the requests sent to it meanwhile.
    auto seen = drain_seen_.emplace(r.id, clock_.Now()).first;
    int64_t drained_for = (clock_.Now() - seen->second).count();
    if (drained_for < options_.min_drain.count()) {
      continue;
    }
    const Duration timeout = er.record != nullptr ? er.record->config.scaling.drain_timeout : Duration(0);
    int open = r.address.empty() || r.cloud == "static" ? 0 : active_connections_(r.address);
    std::string why;
    if (open == 0) {
      why = "drained: no open connections after " + FormatDuration(Duration(drained_for));
    } else if (drained_for >= timeout.count()) {
      why = "drain_timeout " + FormatDuration(timeout) + " passed with " + std::to_string(open) + " open connection(s)";
    } else {
      continue;
    }
    Status st = ReleaseInstance(store_, r, nullptr);
    if (!st.ok()) {
      if (!st.IsConflict()) spdlog::warn("instance {}: {}", r.id, st.ToString());
      continue;
    }
    if (r.cloud != "static") StopAsync(CloudNamed(r.cloud), r.id);
    events_.Record(r.endpoint, "remove", r.id + " removed: " + why);
    drop[i] = true;
  }
  EraseDropped(er.instances, drop);
}

void HostActuator::Act(Round& round) {
  std::set<std::string> known(round.unreadable.begin(), round.unreadable.end());
  for (const auto& id : round.unreadable) {
    if (unreadable_reported_.insert(id).second) {
      events_.Record("", "error",
                     "the record of instance " + id + " does not read; the instance is left running and untouched");
    }
  }
  for (auto it = unreadable_reported_.begin(); it != unreadable_reported_.end();) {
    it = known.count(*it) ? std::next(it) : unreadable_reported_.erase(it);
  }
  std::vector<HealthTarget> targets;
  std::set<std::string> assigned;
  for (auto& [name, er] : round.by_endpoint) {
    if (er.record == nullptr) {
      // Instances of an endpoint that no longer exists (its record vanished
      // while the agent was down): this host takes its own out.
      std::vector<InstanceRecord> kept;
      for (auto& r : er.instances) {
        if (!Mine(r)) {
          kept.push_back(r);
          continue;
        }
        if (ReleaseInstance(store_, r, nullptr).ok()) {
          if (r.cloud != "static") StopAsync(CloudNamed(r.cloud), r.id);
          events_.Record(r.endpoint, "remove", r.id + " removed: its endpoint no longer exists");
        } else {
          kept.push_back(r);
          known.insert(r.id);
        }
      }
      er.instances = std::move(kept);
      continue;
    }
    if (!er.record->config_known) {
      // Nothing known of how to run or check them: leave them untouched.
      for (const auto& r : er.instances) known.insert(r.id);
      continue;
    }
    for (auto& r : er.instances) {
      if (!Mine(r) || r.cloud == "static") continue;
      if (r.state != InstanceState::kStarting || !r.address.empty() || launched_.count(r.id)) continue;
      auto view = cloud_view_.find(r.cloud);
      if (view != cloud_view_.end() && view->second.count(r.id)) continue;        // running: Check adopts it
      if (view == cloud_view_.end() && CloudNamed(r.cloud) != nullptr) continue;  // cloud unreachable: wait
      Launch(er, r);
    }
    FinishDraining(er);
    const HealthConfig& h = er.record->config.health;
    for (const auto& r : er.instances) {
      if (!Mine(r)) continue;
      known.insert(r.id);
      assigned.insert(r.id);
      if (r.address.empty()) continue;
      if (r.state != InstanceState::kStarting && r.state != InstanceState::kActive &&
          !(r.state == InstanceState::kErrored && r.cloud == "static")) {
        continue;
      }
      HealthTarget t;
      t.id = HealthTargetId(r);
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
  }
  health_.SetTargets(targets);
  for (auto it = drain_seen_.begin(); it != drain_seen_.end();) {
    it = assigned.count(it->first) ? std::next(it) : drain_seen_.erase(it);
  }
  for (auto it = start_seen_.begin(); it != start_seen_.end();) {
    it = assigned.count(it->first) ? std::next(it) : start_seen_.erase(it);
  }
  for (auto it = launched_.begin(); it != launched_.end();) {
    it = known.count(*it) ? std::next(it) : launched_.erase(it);
  }
  // Whatever runs here without a record assigned here is stopped: removed
  // by its owner, replaced while this host was away, or a stray.
  for (auto& [kind, cloud] : clouds_) {
    auto view = cloud_view_.find(cloud->Name());
    if (kind == CloudKind::kStatic || view == cloud_view_.end()) continue;
    for (auto& [id, info] : view->second) {
      if (known.count(id) || Stopping(id)) continue;
      if (!assigned_.count(id)) {
        events_.Record(
            info.endpoint, "remove",
            id + " (" + info.address + ") has no instance record on " + options_.manager + ": stopping the stray");
      }
      StopAsync(cloud, id);
    }
  }
  assigned_ = std::move(assigned);
}

}  // namespace reactor
