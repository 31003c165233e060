// A Store that keeps a local copy of some key prefixes, fed by one watch per
// prefix, and answers reads and watches under them from memory: the agent's
// loop and API read endpoints, instances, owners and hosts many times a
// round, a round trip each on etcd (SQLite reads are local and need no copy;
// OpenStore wraps only etcd). Everything else is forwarded.
//
// Consistency, as a caller may notice it:
// - Reads are not linearizable: another agent's write shows once its watch
//   event has arrived (milliseconds on a healthy etcd). Every write still
//   goes to the real store, with the caller's compares, so a read that was
//   stale makes a compare-and-swap fail (Conflict), never a lost update.
// - Read-your-writes: a Commit that succeeds is applied to the copy before
//   Commit returns, so this process sees its own writes at once.
// - GetPrefix's revision is the copy's: every event up to it is in the
//   answer. When it is asked for, GetPrefix first waits (briefly; then it
//   asks the real store) until the watch has brought this process's own
//   writes, so the answer is exactly the state at that revision.
// - RevokeLease drops the lease's keys from the copy at once.
// - A prefix is answered from memory only while its watch is established
//   and the real store answered the last call forwarded to it; otherwise the
//   call goes to the real store (and fails as it would, e.g. Unavailable
//   while etcd is away) until the watch has caught up again.
// - Watch under a cached prefix is served from the events the copy received
//   (the last kHistory of them per prefix); from an older revision it is
//   forwarded.
//
// Thread-safety: all methods are thread-safe; one thread per cached prefix.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/store/store.h"

namespace reactor {

class CachingStore : public Store {
 public:
  /// Events kept per prefix for Watch.
  static constexpr size_t kHistory = 2048;
  /// How long GetPrefix waits for the watch to bring the own writes.
  static constexpr Duration kCatchUp{1000};

  /// Caches `prefixes` (each ending in '/', none a prefix of another) of
  /// `base`. Starts the watch threads; until a prefix's first read
  /// succeeds, calls under it are forwarded.
  CachingStore(std::unique_ptr<Store> base, std::vector<std::string> prefixes);
  /// Stops the watch threads (within a watch slice, a quarter second).
  ~CachingStore() override;
  CachingStore(const CachingStore&) = delete;
  CachingStore& operator=(const CachingStore&) = delete;

  Result<int64_t> Revision() override;
  Result<std::optional<KeyValue>> Get(const std::string& key) override;
  Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) override;
  Result<TxnResult> Commit(const Txn& txn) override;
  Result<LeaseId> GrantLease(Duration ttl) override;
  Status KeepAlive(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;
  Result<WatchResult> Watch(const std::string& prefix, int64_t after_revision, Duration timeout) override;
  Store& Backend() override { return base_->Backend(); }

  /// True when every prefix is answered from memory (for tests).
  bool AllSynced();

 private:
  struct Cached {
    std::string prefix;
    bool synced = false;       // the copy follows the watch
    int64_t revision = 0;      // every event up to here is applied
    int64_t own_revision = 0;  // the newest own write under the prefix
    std::map<std::string, KeyValue> keys;
    // Keys this process deleted at a revision the watch has not reached:
    // older watch events for them must not bring them back.
    std::map<std::string, int64_t> deleted;
    std::deque<WatchEvent> history;  // the last events received, in order
    int64_t history_base = 0;        // history holds every event after this
    std::thread thread;
  };

  Cached* Find(const std::string& key_or_prefix);
  bool Serving(const Cached& c) const;  // REQUIRES mu_ held
  template <typename T>
  T Note(T result);  // records whether the real store answered
  void Follow(Cached* c);
  void Load(Cached* c, std::vector<KeyValue> kvs, int64_t revision);  // REQUIRES mu_ held
  void Apply(Cached* c, const WatchEvent& e);                         // REQUIRES mu_ held
  void ApplyOwn(const std::vector<Op>& ops, int64_t revision);        // REQUIRES mu_ held

  std::unique_ptr<Store> base_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> base_failing_{false};

  std::mutex mu_;
  std::condition_variable changed_;              // an event arrived, a prefix synced, or stop
  std::vector<std::unique_ptr<Cached>> cached_;  // the vector is constant; entries protected by mu_
};

}  // namespace reactor
