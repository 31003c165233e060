// The agent's state store: an etcd-shaped key-value model with revisions,
// compare-and-swap transactions, leases and watches. Nothing outside store/
// knows which backend (embedded SQLite or etcd) is behind it: open one with
// OpenStore("sqlite:/path" | "etcd://h1:2379,h2:2379").
//
// Keys are byte strings; by convention "/reactor/<kind>/<endpoint>/..."; see
// agent/store/keys.h for the key layout. All methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"

namespace reactor {

using LeaseId = int64_t;  // 0 = no lease

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // number of puts since creation
  LeaseId lease = 0;
};

/// One condition of a transaction, evaluated against the current state.
struct Compare {
  enum class Target { kModRevision, kCreateRevision, kVersion, kValue, kLease };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;  // for revisions, version and lease; a missing key has all of them 0
  std::string value;   // for kValue; a missing key never compares equal on value

  /// Key must not exist (its mod revision is 0).
  static Compare Absent(std::string key) { return {std::move(key), Target::kModRevision, Op::kEqual, 0, {}}; }
  static Compare ModRevisionIs(std::string key, int64_t rev) {
    return {std::move(key), Target::kModRevision, Op::kEqual, rev, {}};
  }
  static Compare ValueIs(std::string key, std::string v) {
    return {std::move(key), Target::kValue, Op::kEqual, 0, std::move(v)};
  }
};

/// One write of a transaction.
struct Op {
  enum class Type { kPut, kDelete, kDeletePrefix };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  LeaseId lease = 0;

  static Op Put(std::string key, std::string value, LeaseId lease = 0) {
    return {Type::kPut, std::move(key), std::move(value), lease};
  }
  static Op Delete(std::string key) { return {Type::kDelete, std::move(key), {}, 0}; }
  static Op DeletePrefix(std::string prefix) { return {Type::kDeletePrefix, std::move(prefix), {}, 0}; }
};

struct Txn {
  std::vector<Compare> compares;  // all must hold for `success` to run
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // the store's revision after the transaction
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision (the deleting revision) only
};

struct WatchResult {
  std::vector<WatchEvent> events;  // in revision order
  int64_t revision = 0;            // pass as after_revision to the next Watch
  /// True when after_revision is older than the retained history: the caller
  /// must re-read the prefix with GetPrefix and watch from its revision.
  bool compacted = false;
};

class Store {
 public:
  virtual ~Store() = default;

  /// The current revision (increases by one per write transaction).
  virtual Result<int64_t> Revision() = 0;
  /// The key, or nullopt if absent.
  virtual Result<std::optional<KeyValue>> Get(const std::string& key) = 0;
  /// All keys starting with `prefix`, in key order, and the revision read at.
  virtual Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) = 0;
  /// Atomically: if every compare holds, apply `success`, else `failure`.
  /// A put with a lease that does not exist fails with NotFound (nothing applied).
  virtual Result<TxnResult> Commit(const Txn& txn) = 0;

  /// Grants a lease that expires `ttl` after its last keep-alive; keys put
  /// under it are deleted when it expires or is revoked.
  virtual Result<LeaseId> GrantLease(Duration ttl) = 0;
  /// Refreshes the lease. NotFound if it has already expired.
  virtual Status KeepAlive(LeaseId lease) = 0;
  virtual Status RevokeLease(LeaseId lease) = 0;

  /// Blocks until some key under `prefix` changes after `after_revision`, or
  /// `timeout` passes (then returns no events and the current revision).
  virtual Result<WatchResult> Watch(const std::string& prefix, int64_t after_revision, Duration timeout) = 0;

  /// The store that holds the data, behind any wrappers (CountingStore,
  /// CachingStore): what a backup copies. Wrappers forward it.
  virtual Store& Backend() { return *this; }

  // Conveniences built on the primitives above.
  /// Unconditional put; returns the new revision.
  Result<int64_t> Put(const std::string& key, const std::string& value, LeaseId lease = 0);
  /// Put iff the key's mod revision is `expected` (0: the key must be absent).
  /// Conflict if it is not.
  Result<int64_t> CompareAndSwap(const std::string& key, int64_t expected, const std::string& value, LeaseId lease = 0);
  /// Deletes the key; OK if it was absent.
  Status Delete(const std::string& key);
  Status DeletePrefix(const std::string& prefix);
};

/// How to reach an etcd store ([agent] etcd_* keys); unused for SQLite.
struct StoreOptions {
  std::string etcd_ca_file;  // all three, or none: https to etcd
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string etcd_user;           // "" = no etcd auth
  std::string etcd_password_file;  // read at open; one line, trailing newline dropped
  /// History etcd keeps: older revisions are compacted; 0 = no compaction
  /// by the agent (agent/store/etcd_compaction.h).
  Duration etcd_compaction{5 * 60 * 1000};
  /// Prefixes a long-running caller reads again and again (the agent: every
  /// round). Where reads are remote (etcd) they are answered from a local
  /// copy that a watch keeps current (agent/store/caching_store.h); SQLite's
  /// reads are local and need none. Empty: no copy (one-shot commands).
  std::vector<std::string> cached_prefixes;
};

/// Opens the store a `state =` URL names: "sqlite:/path/state.db" (or
/// "sqlite::memory:") or "etcd://host:port[,host:port...]". Opening an
/// etcd store does not contact etcd; its calls return Unavailable while
/// etcd cannot be reached.
Result<std::unique_ptr<Store>> OpenStore(const std::string& url, Clock& clock);
Result<std::unique_ptr<Store>> OpenStore(const std::string& url, Clock& clock, const StoreOptions& options);

}  // namespace reactor
