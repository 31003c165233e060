// This host's membership of the cluster (SPEC §13): its record under its own
// lease in the store, kept alive from a thread of its own every third of the
// TTL, so a busy loop never loses it. The lease gone means the host is gone.
// On SQLite the same code runs: a single host is a cluster of one.
//
// Also the operator's view of every host (`reactor managers`) and cordons,
// which take a host out of placement (a persistent key, not under a lease:
// a cordon outlives a restart).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/events/event_log.h"
#include "agent/store/store.h"

namespace reactor {

struct HostRecord {
  std::string name;
  std::string address;  // where other hosts reach its nginx and instances
  std::string api;      // its API listener, for operators
  int slots = 0;
  int slots_used = 0;
  int instances = 0;
  std::vector<std::string> drivers;
  std::string version;
  int64_t renewed_ms = 0;  // wall clock of the last renewal of its lease (rewritten with each)
  int64_t lease_ttl_ms = 0;
};

std::string EncodeHostRecord(const HostRecord& r);
Result<HostRecord> DecodeHostRecord(const std::string& value);

/// What `reactor managers --json` shows of one host.
struct ManagerView {
  std::string name;
  std::string address;
  std::string state;      // "up", "cordoned" or "gone"
  bool draining = false;  // `managers drain`: cordoned, its instances moving off (until uncordon)
  int slots = 0;
  int slots_used = 0;
  int instances = 0;
  int owned = 0;               // endpoints it owns
  int64_t lease_left_ms = -1;  // -1 = unknown or gone
};

/// Every host: those with a live record (up or cordoned), and those that
/// instance records or cordons still name but whose lease is gone ("gone").
/// A drained host is cordoned too, with `draining` set.
/// `now_ms` (wall clock) gives each live host's lease time left, from its
/// last renewal as its record says (so within the hosts' clock skew).
Result<std::vector<ManagerView>> ListManagers(Store& store, int64_t now_ms);

/// Cordon: no new placements on the host. Idempotent.
Status SetCordon(Store& store, const std::string& manager, bool cordoned);
Result<bool> IsCordoned(Store& store, const std::string& manager);

class HostMembership {
 public:
  struct Options {
    HostRecord record;  // name, address, api, slots, drivers, version
    Duration lease_ttl{5000};
  };
  /// Every reference must outlive this object.
  HostMembership(Options options, Store& store, EventLog& events, Clock& clock);
  ~HostMembership();

  /// Grants the lease and writes the record; then keeps the lease alive
  /// from a thread until the destructor revokes it. An error here (store
  /// unreachable) is returned; later ones are retried by the thread.
  Status Start();
  /// The loop's latest counts; written with the next keep-alive when they
  /// changed. Thread-safe.
  void Update(int slots_used, int instances);
  /// How long the lease surely still holds (monotonic, from the last
  /// successful keep-alive): zero when it may have expired. Thread-safe and
  /// lock-free: never waits for a keep-alive stuck on an unreachable store.
  Duration LeaseLeft() const;
  /// The lease the record (and this host's owner keys) live under; 0 while
  /// there is none. Thread-safe, lock-free.
  LeaseId Lease() const { return lease_seen_.load(); }

 private:
  void KeepAliveLoop();
  Status RegisterLocked();

  const Options options_;
  Store& store_;
  EventLog& events_;
  Clock& clock_;

  // State below is protected by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool exit_ = false;
  bool changed_ = false;  // Update changed the counts since they were written
  LeaseId lease_ = 0;
  TimePoint renewed_{};  // when the last grant/keep-alive was sent (before it succeeded)
  HostRecord record_;
  std::string written_;     // the record as last written
  std::string last_error_;  // said once in the agent log
  std::thread thread_;
  // Copies of lease_ and renewed_ for lock-free readers.
  std::atomic<LeaseId> lease_seen_{0};
  std::atomic<int64_t> renewed_seen_ns_{0};
  void PublishLeaseLocked();
};

}  // namespace reactor
