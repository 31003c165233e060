#include "agent/scaler/wake_source.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/store/keys.h"

namespace reactor {

StoreWakeSource::StoreWakeSource(Store& store, Clock& clock, Duration refresh, Duration max_age)
    : store_(store), clock_(clock), refresh_(refresh), max_age_(max_age) {}

WakeDemand StoreWakeSource::Demand(const std::string& endpoint) {
  const TimePoint now = clock_.Now();
  if (!read_ || stale_.exchange(false) || now - read_at_ >= refresh_) {
    auto kvs = store_.GetPrefix(WakeRootPrefix());
    // A failed read keeps the last one: an unreachable store makes no
    // decision anyway, and a launch already made is not undone.
    if (kvs.ok()) {
      read_ = true;
      read_at_ = now;
      demand_.clear();
      const int64_t wall = clock_.WallMillis();
      const std::string root = WakeRootPrefix();
      for (const KeyValue& kv : *kvs) {
        const std::string rest = kv.key.substr(root.size());
        const size_t slash = rest.find('/');
        if (slash == std::string::npos || slash == 0) continue;
        auto j = nlohmann::json::parse(kv.value, nullptr, false);
        if (!j.is_object()) continue;  // unreadable: no demand, nothing stopped
        const int held = j.value("held", 0);
        const int64_t since = j.value("since_ms", int64_t{0});
        const int64_t at = j.value("at_ms", int64_t{0});
        if (held <= 0 || wall - at > max_age_.count()) continue;
        WakeDemand& d = demand_[rest.substr(0, slash)];
        d.held += held;
        if (since > 0 && (d.since_ms == 0 || since < d.since_ms)) d.since_ms = since;
      }
    }
  }
  auto it = demand_.find(endpoint);
  return it == demand_.end() ? WakeDemand{} : it->second;
}

Result<bool> StoreWakeSource::WaitForChange(Duration timeout) {
  if (watch_revision_ < 0) {
    auto rev = store_.Revision();
    if (!rev.ok()) return rev.status();
    watch_revision_ = *rev;
  }
  auto w = store_.Watch(WakeRootPrefix(), watch_revision_, timeout);
  if (!w.ok()) return w.status();
  if (w->compacted) {
    watch_revision_ = -1;  // read the revision again; whatever changed is read by the next Demand
    stale_ = true;
    return true;
  }
  watch_revision_ = w->revision;
  if (w->events.empty()) return false;
  stale_ = true;
  return true;
}

StoreWakeRecorder::StoreWakeRecorder(Store& store, Clock& clock, std::string manager, Duration lease_ttl)
    : store_(store), clock_(clock), manager_(std::move(manager)), lease_ttl_(lease_ttl) {}

Status StoreWakeRecorder::LeaseLocked(LeaseId* lease) {
  const TimePoint now = clock_.Now();
  if (lease_ != 0 && now - renewed_ < lease_ttl_ / 3) {
    *lease = lease_;
    return Status::Ok();
  }
  if (lease_ != 0) {
    Status s = store_.KeepAlive(lease_);
    if (s.ok()) {
      renewed_ = now;
      *lease = lease_;
      return s;
    }
    if (s.code() != Status::Code::kNotFound) return s;
    lease_ = 0;  // expired: its keys are gone with it
  }
  auto granted = store_.GrantLease(lease_ttl_);
  if (!granted.ok()) return granted.status();
  lease_ = *granted;
  renewed_ = now;
  *lease = lease_;
  for (const auto& [endpoint, value] : written_) {
    auto put = store_.Put(WakeKey(endpoint, manager_), value, lease_);
    if (!put.ok()) return put.status();
  }
  return Status::Ok();
}

Status StoreWakeRecorder::Record(const std::string& endpoint, int held, int64_t since_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = WakeKey(endpoint, manager_);
  if (held <= 0) {
    if (!written_.count(endpoint)) return Status::Ok();
    Status s = store_.Delete(key);
    if (s.ok()) written_.erase(endpoint);
    return s;
  }
  LeaseId lease = 0;
  Status s = LeaseLocked(&lease);
  if (!s.ok()) return s;
  const std::string value =
      nlohmann::json({{"held", held}, {"since_ms", since_ms}, {"at_ms", clock_.WallMillis()}}).dump();
  auto put = store_.Put(key, value, lease);
  if (!put.ok() && put.status().code() == Status::Code::kNotFound) {
    // The lease expired between the keep-alive and the put: a new one.
    lease_ = 0;
    s = LeaseLocked(&lease);
    if (!s.ok()) return s;
    put = store_.Put(key, value, lease);
  }
  if (!put.ok()) return put.status();
  written_[endpoint] = value;
  return Status::Ok();
}

Status StoreWakeRecorder::KeepAlive() {
  std::lock_guard<std::mutex> lock(mu_);
  if (written_.empty()) return Status::Ok();
  LeaseId lease = 0;
  return LeaseLocked(&lease);
}

}  // namespace reactor
