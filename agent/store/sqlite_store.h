// The embedded Store backend: one SQLite file in WAL mode (or ":memory:").
//
// Model (etcd's):
// - The store has one revision, 0 when empty. Every Commit that changes at
//   least one key, and every lease expiry or revoke that deletes keys, adds
//   exactly 1; a transaction that writes nothing (failed compares with an
//   empty failure branch, deleting an absent key) does not.
// - A key's create_revision is the revision that created it, mod_revision the
//   last one that wrote it, version the number of puts since creation
//   (deleting resets all three). A put without a lease detaches the key from
//   any lease it had.
// - Leases expire on wall-clock time (Clock::WallMillis), stored in the file,
//   so they survive restarts; a lease whose expiry passed while no agent had
//   the file open expires when it is next opened. Expired leases are reaped
//   lazily at the start of every operation, by ExpireLeases(), and by Watch
//   while it waits; reaping deletes the leases' keys in one revision of its own.
// - Watch history keeps at least the last `history_limit` events (whole
//   revisions; pruned in batches of a tenth of the limit); a Watch from
//   before the retained history reports compacted = true.
//
// Thread-safety: all methods are thread-safe (one connection, one mutex).
// Several processes may open the same file (e.g. `reactor` tools reading it);
// writers are serialised by SQLite (BEGIN IMMEDIATE + busy timeout) and a
// waiting Watch polls for their commits every ~100 ms. Two agents should
// still not share one file: each would reap the other's leases.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace reactor {

class SqliteStore : public Store {
 public:
  struct Options {
    /// Watch events kept for Watch; older ones are dropped a revision at a time.
    int64_t history_limit = 10000;
    /// How long a writer waits for another process's write lock.
    Duration busy_timeout = Duration(5000);
    /// PRAGMA synchronous: false = NORMAL (a crash of the process loses
    /// nothing; power loss may lose the last commits), true = FULL.
    bool sync_full = false;
  };

  /// Opens or creates the database at `path` (":memory:" for a private,
  /// in-memory one) and reaps leases that expired while it was closed.
  /// `clock` must outlive the store. IOError names the path on failure.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, Clock& clock);
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, Clock& clock, Options options);

  /// REQUIRES: no call on this store is still running (e.g. a blocked Watch).
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<int64_t> Revision() override;
  Result<std::optional<KeyValue>> Get(const std::string& key) override;
  Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) override;
  Result<TxnResult> Commit(const Txn& txn) override;

  Result<LeaseId> GrantLease(Duration ttl) override;
  Status KeepAlive(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;

  /// `timeout` is real time (not the injected clock), so a commit from another
  /// thread or process can end the wait; negative counts as zero, and it is
  /// capped at a day.
  Result<WatchResult> Watch(const std::string& prefix, int64_t after_revision, Duration timeout) override;

  /// Deletes the keys of every lease whose expiry has passed (by the clock),
  /// and the leases. Operations do this anyway; call it to reap without one.
  Status ExpireLeases();

  /// Drops the watch history up to `revision` (as etcd's compaction): a
  /// Watch after an earlier revision reports compacted. InvalidArgument if
  /// `revision` is in the future; a revision at or before the current
  /// compaction changes nothing.
  Status Compact(int64_t revision);

  /// Writes a consistent copy of the database to `path` with SQLite's
  /// online backup API (other connections keep reading and writing).
  Status BackupTo(const std::string& path);

  const std::string& path() const { return path_; }

 private:
  struct Statements;
  class Stmt;

  SqliteStore(std::string path, Clock& clock, Options options);
  Status Init();

  // All below REQUIRE mu_ held.
  Status Prepare(sqlite3_stmt** stmt, const char* sql);
  Status Exec(const char* sql);
  Status SqlError(int rc, const std::string& what) const;
  Status Begin(bool immediate);
  Status CommitSql();
  void Rollback();
  Status ReadMeta(int64_t* revision, int64_t* compact_revision);
  Status SetRevision(int64_t revision);
  Result<std::optional<KeyValue>> GetLocked(const std::string& key);
  Result<std::vector<KeyValue>> RangeLocked(const std::string& prefix);
  Status RecordEvent(int64_t revision, WatchEvent::Type type, const KeyValue& kv);
  Status DeleteLeaseKeys(LeaseId lease, int64_t revision, bool* deleted_any);
  Status PruneHistory();
  Status ExpireLeasesLocked();
  Result<bool> LeaseExists(LeaseId lease);
  Status EvalCompare(const Compare& c, bool* holds);
  Status ApplyOp(const Op& op, int64_t revision, bool* wrote);
  Status EventsAfter(const std::string& prefix, int64_t after_revision, std::vector<WatchEvent>* events);

  // Constant after construction.
  const std::string path_;
  Clock& clock_;
  const Options options_;

  // State below is protected by mu_.
  std::mutex mu_;
  std::condition_variable committed_;  // signalled (under mu_) after every local write
  sqlite3* db_ = nullptr;              // protected by mu_
  std::unique_ptr<Statements> stmts_;  // protected by mu_
};

}  // namespace reactor
