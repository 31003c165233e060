// The cluster Store backend: etcd v3 through its JSON gateway (etcd 3.4's
// /v3/ prefix), `state = etcd://h1:2379,h2:2379,h3:2379`.
//
// Model: etcd's own (SqliteStore follows it), with these differences a
// caller may notice:
// - Lease TTLs are whole seconds (rounded up) and etcd raises a TTL below
//   its minimum (1.5 x the election timeout, 2 s by default) to that minimum;
//   expiry is decided by etcd's leader, on its clock (the injected Clock is
//   not used for leases).
// - A transaction may not name one key twice in a branch (etcd: "duplicate
//   key given in txn request" → InvalidArgument) and may have at most 128
//   compares and 128 operations per branch; values are at most 1 MiB. Both
//   are refused with InvalidArgument before anything is sent.
// - Watch: one streaming watch per prefix is kept open across calls and its
//   events are buffered; a call returns what arrived after `after_revision`.
//   On a timeout without events it returns `after_revision` itself as the
//   revision (the gateway gives no proof that nothing happened up to a later
//   one), so a caller never skips events by watching from a later revision.
//   A watch from before etcd's compaction returns compacted = true.
// - History: the store compacts etcd's history itself, keeping at least
//   EtcdOptions::compaction_retention ([agent] etcd_compaction, 5 minutes by
//   default; 0 = off) and taking turns with the other agents on the same
//   etcd (agent/store/etcd_compaction.h, which says why this is safe for
//   watches). It writes one key, EtcdCompactionKey(), under /reactor/.
//
// Errors: every failure to reach etcd, a member without a leader, or a
// conditional write (a Commit with compares) whose outcome is unknown is
// Status::Unavailable with a message
// naming the members and why ("etcd /v3/kv/txn: no member of
// etcd://127.0.0.1:2379 answered after 3 attempts; ...: Connection refused").
// Writes are never dropped silently: the caller gets the error. A Commit
// without compares is sent again to another member when its outcome is
// unknown (applying it twice leaves the same keys and values).
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent/store/etcd_compaction.h"
#include "agent/store/etcd_connection.h"
#include "agent/store/etcd_watch_stream.h"
#include "agent/store/store.h"

namespace reactor {

class EtcdStore : public Store {
 public:
  /// Over libcurl. Does not contact etcd (an agent starts while etcd is away).
  static Result<std::unique_ptr<EtcdStore>> Open(EtcdOptions options);
  /// Over `http` (a fake in unit tests); `sleep` waits between retries.
  static Result<std::unique_ptr<EtcdStore>> Open(EtcdOptions options, std::unique_ptr<EtcdHttp> http,
                                                 std::function<void(Duration)> sleep);

  /// Stops periodic compaction and every watch stream (within about a
  /// second; a compaction request under way within its timeout).
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  Result<int64_t> Revision() override;
  Result<std::optional<KeyValue>> Get(const std::string& key) override;
  /// Read in pages of `page_size` keys at one revision, so 10,000 keys are a
  /// few requests and still one snapshot.
  Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) override;
  Result<TxnResult> Commit(const Txn& txn) override;

  Result<LeaseId> GrantLease(Duration ttl) override;
  /// NotFound when the lease has expired (etcd answers without a TTL).
  Status KeepAlive(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;

  /// `timeout` is capped at a day; Unavailable if the watch could not be
  /// established on any member by then.
  Result<WatchResult> Watch(const std::string& prefix, int64_t after_revision, Duration timeout) override;

  /// Compacts etcd's history up to `revision` (physical: waits for it).
  Status Compact(int64_t revision);
  /// Periodic compaction's counters (all zero when it is off).
  EtcdCompactionStats compaction_stats();
  /// Streams the maintenance snapshot (a bbolt file `etcdctl snapshot
  /// restore` accepts) to `sink`, chunk by chunk.
  Status Snapshot(const std::function<Status(const std::string& chunk)>& sink);

  /// Keys per range request in GetPrefix.
  void set_page_size(int64_t n) { page_size_ = n; }
  std::string Describe() const { return conn_.Describe(); }

 private:
  EtcdStore(EtcdOptions options, std::unique_ptr<EtcdHttp> http, std::function<void(Duration)> sleep);
  Result<etcd::RangeResponse> Range(const etcd::RangeArgs& args);
  std::shared_ptr<EtcdWatchStream> StreamFor(const std::string& prefix, int64_t after_revision);

  EtcdConnection conn_;
  int64_t page_size_ = 5000;

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<EtcdWatchStream>> streams_;  // by prefix; protected by mu_

  std::unique_ptr<EtcdCompaction> compaction_;  // null when off; constant after construction
};

}  // namespace reactor
