// Scale to zero across hosts: requests held by any host's nginx are demand
// for the endpoint's owner, wherever it runs. The host whose nginx holds
// them records the count in the store (StoreWakeRecorder, one key per
// endpoint and host, WakeKey, under a lease of that host so a host that
// dies takes its counts with it); the deciding side reads the sum through
// WakeSource, which RulesPolicy consults for an endpoint with no instance
// in service.
//
// Value of a wake key: {"held": N, "since_ms": wall ms of the hold's first
// request, "at_ms": wall ms written}.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/store/store.h"

namespace reactor {

/// Requests held for one endpoint, summed over every host's nginx.
struct WakeDemand {
  int held = 0;
  int64_t since_ms = 0;  // wall ms of the earliest open hold (0 when held = 0)
};

/// What the scaling policy asks about held requests. Thread: the caller's.
class WakeSource {
 public:
  virtual ~WakeSource() = default;
  /// The requests held for `endpoint` now (held 0 when none).
  virtual WakeDemand Demand(const std::string& endpoint) = 0;
};

/// Reads the wake keys of every endpoint at once (one prefix read), at most
/// once per `refresh`: an agent with 1,000 endpoints at zero asks once per
/// round, not once per endpoint. A key older than `max_age` (its writer
/// stopped updating it without its lease expiring) is ignored. Not
/// thread-safe (one caller: the loop).
class StoreWakeSource : public WakeSource {
 public:
  /// Both must outlive this object.
  StoreWakeSource(Store& store, Clock& clock, Duration refresh = Duration(100), Duration max_age = Duration(660000));
  WakeDemand Demand(const std::string& endpoint) override;

  /// Blocks until a wake key of any endpoint changes (a host's nginx began
  /// or ended a hold: the caller runs a round at once, wherever the hold
  /// is) or `timeout` passes; true when one changed. The next Demand reads
  /// the store again. The store's error when it cannot watch (the caller
  /// waits before trying again). Thread: one watching thread, besides
  /// Demand's caller.
  Result<bool> WaitForChange(Duration timeout);

 private:
  Store& store_;
  Clock& clock_;
  const Duration refresh_;
  const Duration max_age_;
  std::atomic<bool> stale_{false};
  int64_t watch_revision_ = -1;  // the watching thread's; -1 = not watching yet
  bool read_ = false;
  TimePoint read_at_{};
  std::map<std::string, WakeDemand> demand_;
};

/// Writes this host's held counts under a lease of its own (granted with
/// `lease_ttl` on the first hold, kept alive while holds are open, left to
/// expire after). Thread-safe.
class StoreWakeRecorder {
 public:
  /// Both must outlive this object. REQUIRES: IsValidKeySegment(manager).
  StoreWakeRecorder(Store& store, Clock& clock, std::string manager, Duration lease_ttl);

  /// Records `held` requests of `endpoint` held since `since_ms` (held 0:
  /// the hold is over, the key goes). REQUIRES: a valid endpoint name.
  Status Record(const std::string& endpoint, int held, int64_t since_ms);
  /// Keeps the lease alive (at most every third of its TTL) while keys exist.
  Status KeepAlive();

 private:
  /// The lease to write under; a new one (with every key of ours written
  /// again) when the last expired.
  Status LeaseLocked(LeaseId* lease);

  Store& store_;
  Clock& clock_;
  const std::string manager_;
  const Duration lease_ttl_;

  std::mutex mu_;
  // State below is protected by mu_.
  LeaseId lease_ = 0;
  TimePoint renewed_{};
  std::map<std::string, std::string> written_;  // endpoint -> the value of our key
};

}  // namespace reactor
