#include "agent/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace reactor {
namespace {

constexpr int kSchemaVersion = 1;
// How often a waiting Watch looks for commits made by other processes (and
// for leases that expired meanwhile).
constexpr Duration kWatchPoll(100);
constexpr Duration kMaxWatchTimeout(24 * 3600 * 1000);

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision INTEGER NOT NULL,
  compact_revision INTEGER NOT NULL,
  last_lease INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(id, revision, compact_revision, last_lease) VALUES (1, 0, 0, 0);
CREATE TABLE IF NOT EXISTS kv(
  key BLOB PRIMARY KEY,
  value BLOB NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS leases(
  id INTEGER PRIMARY KEY,
  ttl_ms INTEGER NOT NULL,
  expires_at_wall_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases(expires_at_wall_ms);
CREATE TABLE IF NOT EXISTS history(
  seq INTEGER PRIMARY KEY,
  revision INTEGER NOT NULL,
  type INTEGER NOT NULL,
  key BLOB NOT NULL,
  value BLOB,
  create_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS history_by_revision ON history(revision);
)sql";

constexpr const char* kKvColumns = "key, value, create_revision, mod_revision, version, lease";

/// The smallest key greater than every key starting with `prefix`, or nullopt
/// if there is none ("" or all 0xFF bytes: the range is open above).
std::optional<std::string> PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last != 0xFF) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::nullopt;
}

int CompareNumbers(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

bool OpHolds(Compare::Op op, int cmp) {
  switch (op) {
    case Compare::Op::kEqual: return cmp == 0;
    case Compare::Op::kNotEqual: return cmp != 0;
    case Compare::Op::kLess: return cmp < 0;
    case Compare::Op::kGreater: return cmp > 0;
  }
  return false;
}

}  // namespace

// Every statement the store runs, prepared once at open.
struct SqliteStore::Statements {
  sqlite3_stmt* begin_immediate = nullptr;
  sqlite3_stmt* begin_deferred = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  sqlite3_stmt* read_meta = nullptr;
  sqlite3_stmt* set_revision = nullptr;
  sqlite3_stmt* set_compact_revision = nullptr;
  sqlite3_stmt* read_last_lease = nullptr;
  sqlite3_stmt* set_last_lease = nullptr;
  sqlite3_stmt* get_kv = nullptr;
  sqlite3_stmt* range_kv = nullptr;       // [?1, ?2)
  sqlite3_stmt* range_kv_open = nullptr;  // [?1, ...)
  sqlite3_stmt* put_kv = nullptr;
  sqlite3_stmt* delete_kv = nullptr;
  sqlite3_stmt* range_delete_kv = nullptr;
  sqlite3_stmt* range_delete_kv_open = nullptr;
  sqlite3_stmt* kv_by_lease = nullptr;
  sqlite3_stmt* delete_kv_by_lease = nullptr;
  sqlite3_stmt* add_event = nullptr;
  sqlite3_stmt* events_range = nullptr;
  sqlite3_stmt* events_range_open = nullptr;
  sqlite3_stmt* history_bounds = nullptr;  // two subqueries: min() and max() together would scan
  sqlite3_stmt* history_revision_at = nullptr;
  sqlite3_stmt* prune_history = nullptr;
  sqlite3_stmt* get_lease = nullptr;
  sqlite3_stmt* insert_lease = nullptr;
  sqlite3_stmt* set_lease_expiry = nullptr;
  sqlite3_stmt* delete_lease = nullptr;
  sqlite3_stmt* expired_leases = nullptr;

  std::vector<sqlite3_stmt*> All() const {
    return {begin_immediate,
            begin_deferred,
            commit,
            rollback,
            read_meta,
            set_revision,
            set_compact_revision,
            read_last_lease,
            set_last_lease,
            get_kv,
            range_kv,
            range_kv_open,
            put_kv,
            delete_kv,
            range_delete_kv,
            range_delete_kv_open,
            kv_by_lease,
            delete_kv_by_lease,
            add_event,
            events_range,
            events_range_open,
            history_bounds,
            history_revision_at,
            prune_history,
            get_lease,
            insert_lease,
            set_lease_expiry,
            delete_lease,
            expired_leases};
  }
};

// One use of a prepared statement: binds, steps, reads columns, and resets
// the statement when it goes out of scope.
class SqliteStore::Stmt {
 public:
  Stmt(const SqliteStore& store, sqlite3_stmt* stmt) : store_(store), stmt_(stmt) {}
  ~Stmt() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  /// Binds bytes as a BLOB (so keys compare with memcmp and may hold NULs).
  Stmt& Bind(int i, const std::string& v) {
    Check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }

  /// Advances to the next row: true with a row, false when done (or on error;
  /// see status()).
  bool Next() {
    if (!status_.ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = store_.SqlError(rc, sqlite3_sql(stmt_));
    return false;
  }
  /// Runs a statement that returns no rows.
  Status Run() {
    while (Next()) {
    }
    return status_;
  }
  const Status& status() const { return status_; }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Bytes(int col) const {
    const void* data = sqlite3_column_blob(stmt_, col);
    int size = sqlite3_column_bytes(stmt_, col);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
  }
  /// Reads the kKvColumns, starting at `col`.
  KeyValue Kv(int col = 0) const {
    KeyValue kv;
    kv.key = Bytes(col);
    kv.value = Bytes(col + 1);
    kv.create_revision = Int(col + 2);
    kv.mod_revision = Int(col + 3);
    kv.version = Int(col + 4);
    kv.lease = Int(col + 5);
    return kv;
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && status_.ok()) status_ = store_.SqlError(rc, "bind");
  }

  const SqliteStore& store_;
  sqlite3_stmt* stmt_;
  Status status_;
};

SqliteStore::SqliteStore(std::string path, Clock& clock, Options options)
    : path_(std::move(path)), clock_(clock), options_(options), stmts_(std::make_unique<Statements>()) {}

SqliteStore::~SqliteStore() {
  std::lock_guard<std::mutex> lock(mu_);
  for (sqlite3_stmt* s : stmts_->All()) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, Clock& clock) {
  return Open(path, clock, Options());
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, Clock& clock, Options options) {
  if (path.empty()) return Status::InvalidArgument("state store: empty database path");
  if (options.history_limit < 1) return Status::InvalidArgument("state store: history_limit must be at least 1");
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, clock, options));
  REACTOR_RETURN_IF_ERROR(store->Init());
  REACTOR_RETURN_IF_ERROR(store->ExpireLeases());
  return store;
}

Status SqliteStore::SqlError(int rc, const std::string& what) const {
  const char* msg = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string why = std::string(msg) + " (" + what + ")";
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL: return Status::IOError("state store " + path_, why);
    default: return Status::Internal("state store " + path_ + ": " + why);
  }
}

Status SqliteStore::Prepare(sqlite3_stmt** stmt, const char* sql) {
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, sql);
  return Status::Ok();
}

Status SqliteStore::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, sql);
  return Status::Ok();
}

Status SqliteStore::Init() {
  std::lock_guard<std::mutex> lock(mu_);
  // The caller serialises access with mu_, so SQLite's own mutex is not needed.
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    return Status::IOError("state store " + path_, "cannot open: " + why);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout.count()));

  // Fail early, with the path, if the file is not a database we can use.
  int user_version = 0;
  {
    sqlite3_stmt* stmt = nullptr;
    REACTOR_RETURN_IF_ERROR(Prepare(&stmt, "PRAGMA user_version"));
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) user_version = sqlite3_column_int(stmt, 0);
    Status st = rc == SQLITE_ROW ? Status::Ok() : SqlError(rc, "PRAGMA user_version");
    sqlite3_finalize(stmt);
    REACTOR_RETURN_IF_ERROR(st);
  }
  if (user_version > kSchemaVersion) {
    return Status::IOError("state store " + path_, "schema version " + std::to_string(user_version) +
                                                       " was written by a newer reactor (this one knows " +
                                                       std::to_string(kSchemaVersion) + ")");
  }
  REACTOR_RETURN_IF_ERROR(Exec("PRAGMA journal_mode = WAL"));  // ":memory:" keeps its own mode
  REACTOR_RETURN_IF_ERROR(Exec(options_.sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"));
  REACTOR_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status st = Exec(kSchema);
  if (st.ok()) st = Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) {
    Exec("ROLLBACK");
    return st;
  }

  Statements& s = *stmts_;
  const std::string kv_cols = kKvColumns;
  const std::string get_kv = "SELECT " + kv_cols + " FROM kv WHERE key = ?1";
  const std::string range_kv = "SELECT " + kv_cols + " FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";
  const std::string range_kv_open = "SELECT " + kv_cols + " FROM kv WHERE key >= ?1 ORDER BY key";
  const std::string kv_by_lease = "SELECT " + kv_cols + " FROM kv WHERE lease = ?1 ORDER BY key";
  const char* const kEventCols = "SELECT revision, type, key, value, create_revision, version, lease FROM history ";
  const std::string events_range =
      std::string(kEventCols) + "WHERE revision > ?1 AND key >= ?2 AND key < ?3 ORDER BY seq";
  const std::string events_range_open = std::string(kEventCols) + "WHERE revision > ?1 AND key >= ?2 ORDER BY seq";
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } const statements[] = {
      {&s.begin_immediate, "BEGIN IMMEDIATE"},
      {&s.begin_deferred, "BEGIN DEFERRED"},
      {&s.commit, "COMMIT"},
      {&s.rollback, "ROLLBACK"},
      {&s.read_meta, "SELECT revision, compact_revision FROM meta WHERE id = 1"},
      {&s.set_revision, "UPDATE meta SET revision = ?1 WHERE id = 1"},
      {&s.set_compact_revision, "UPDATE meta SET compact_revision = ?1 WHERE id = 1"},
      {&s.read_last_lease, "SELECT last_lease FROM meta WHERE id = 1"},
      {&s.set_last_lease, "UPDATE meta SET last_lease = ?1 WHERE id = 1"},
      {&s.get_kv, get_kv.c_str()},
      {&s.range_kv, range_kv.c_str()},
      {&s.range_kv_open, range_kv_open.c_str()},
      {&s.put_kv,
       "INSERT OR REPLACE INTO kv(key, value, create_revision, mod_revision, version, lease) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
      {&s.delete_kv, "DELETE FROM kv WHERE key = ?1"},
      {&s.range_delete_kv, "DELETE FROM kv WHERE key >= ?1 AND key < ?2"},
      {&s.range_delete_kv_open, "DELETE FROM kv WHERE key >= ?1"},
      {&s.kv_by_lease, kv_by_lease.c_str()},
      {&s.delete_kv_by_lease, "DELETE FROM kv WHERE lease = ?1"},
      {&s.add_event,
       "INSERT INTO history(revision, type, key, value, create_revision, version, lease) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&s.events_range, events_range.c_str()},
      {&s.events_range_open, events_range_open.c_str()},
      {&s.history_bounds, "SELECT (SELECT min(seq) FROM history), (SELECT max(seq) FROM history)"},
      {&s.history_revision_at, "SELECT revision FROM history WHERE seq = ?1"},
      {&s.prune_history, "DELETE FROM history WHERE revision <= ?1"},
      {&s.get_lease, "SELECT ttl_ms, expires_at_wall_ms FROM leases WHERE id = ?1"},
      {&s.insert_lease, "INSERT INTO leases(id, ttl_ms, expires_at_wall_ms) VALUES (?1, ?2, ?3)"},
      {&s.set_lease_expiry, "UPDATE leases SET expires_at_wall_ms = ?2 WHERE id = ?1"},
      {&s.delete_lease, "DELETE FROM leases WHERE id = ?1"},
      {&s.expired_leases, "SELECT id FROM leases WHERE expires_at_wall_ms <= ?1 ORDER BY id"},
  };
  for (const auto& entry : statements) REACTOR_RETURN_IF_ERROR(Prepare(entry.stmt, entry.sql));
  return Status::Ok();
}

// --- transactions and meta -------------------------------------------------

Status SqliteStore::Begin(bool immediate) {
  return Stmt(*this, immediate ? stmts_->begin_immediate : stmts_->begin_deferred).Run();
}

Status SqliteStore::CommitSql() {
  Status st = Stmt(*this, stmts_->commit).Run();
  if (!st.ok()) Rollback();
  return st;
}

void SqliteStore::Rollback() {
  if (sqlite3_get_autocommit(db_) == 0) Stmt(*this, stmts_->rollback).Run();
}

Status SqliteStore::ReadMeta(int64_t* revision, int64_t* compact_revision) {
  Stmt q(*this, stmts_->read_meta);
  if (!q.Next()) return q.status().ok() ? Status::Internal("state store " + path_ + ": meta row missing") : q.status();
  if (revision != nullptr) *revision = q.Int(0);
  if (compact_revision != nullptr) *compact_revision = q.Int(1);
  return Status::Ok();
}

Status SqliteStore::SetRevision(int64_t revision) { return Stmt(*this, stmts_->set_revision).Bind(1, revision).Run(); }

// --- reads -----------------------------------------------------------------

Result<std::optional<KeyValue>> SqliteStore::GetLocked(const std::string& key) {
  Stmt q(*this, stmts_->get_kv);
  q.Bind(1, key);
  if (q.Next()) return std::optional<KeyValue>(q.Kv());
  if (!q.status().ok()) return q.status();
  return std::optional<KeyValue>();
}

Result<std::vector<KeyValue>> SqliteStore::RangeLocked(const std::string& prefix) {
  std::optional<std::string> end = PrefixEnd(prefix);
  Stmt q(*this, end ? stmts_->range_kv : stmts_->range_kv_open);
  q.Bind(1, prefix);
  if (end) q.Bind(2, *end);
  std::vector<KeyValue> kvs;
  while (q.Next()) kvs.push_back(q.Kv());
  if (!q.status().ok()) return q.status();
  return kvs;
}

Result<int64_t> SqliteStore::Revision() {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  int64_t revision = 0;
  REACTOR_RETURN_IF_ERROR(ReadMeta(&revision, nullptr));
  return revision;
}

Result<std::optional<KeyValue>> SqliteStore::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  return GetLocked(key);
}

Result<std::vector<KeyValue>> SqliteStore::GetPrefix(const std::string& prefix, int64_t* revision) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  // One read transaction, so the keys and the revision are one snapshot even
  // if another process writes meanwhile.
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/false));
  auto kvs = RangeLocked(prefix);
  int64_t rev = 0;
  Status st = kvs.ok() ? ReadMeta(&rev, nullptr) : kvs.status();
  if (st.ok()) st = CommitSql();
  if (!st.ok()) {
    Rollback();
    return st;
  }
  if (revision != nullptr) *revision = rev;
  return kvs;
}

// --- writes ----------------------------------------------------------------

Status SqliteStore::RecordEvent(int64_t revision, WatchEvent::Type type, const KeyValue& kv) {
  Stmt q(*this, stmts_->add_event);
  q.Bind(1, revision).Bind(2, static_cast<int64_t>(type)).Bind(3, kv.key);
  if (type == WatchEvent::Type::kPut) {
    q.Bind(4, kv.value).Bind(5, kv.create_revision).Bind(6, kv.version).Bind(7, kv.lease);
  } else {
    q.Bind(5, int64_t{0}).Bind(6, int64_t{0}).Bind(7, int64_t{0});  // value stays NULL
  }
  return q.Run();
}

Status SqliteStore::PruneHistory() {
  int64_t first = 0, last = 0;
  {
    Stmt q(*this, stmts_->history_bounds);
    if (!q.Next()) return q.status();
    if (q.IsNull(0)) return Status::Ok();
    first = q.Int(0);
    last = q.Int(1);
  }
  // Prune in batches (a tenth of the limit) so that not every commit deletes.
  const int64_t limit = options_.history_limit;
  if (last - first + 1 <= limit + limit / 10) return Status::Ok();
  int64_t oldest_kept_revision = 0;
  {
    Stmt q(*this, stmts_->history_revision_at);
    q.Bind(1, last - limit + 1);
    if (!q.Next())
      return q.status().ok() ? Status::Internal("state store " + path_ + ": history has a gap") : q.status();
    oldest_kept_revision = q.Int(0);
  }
  // Whole revisions go: the oldest kept one keeps all its events.
  const int64_t compact_revision = oldest_kept_revision - 1;
  if (compact_revision <= 0) return Status::Ok();
  REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->prune_history).Bind(1, compact_revision).Run());
  return Stmt(*this, stmts_->set_compact_revision).Bind(1, compact_revision).Run();
}

Result<bool> SqliteStore::LeaseExists(LeaseId lease) {
  Stmt q(*this, stmts_->get_lease);
  q.Bind(1, lease);
  if (q.Next()) return q.Int(1) > clock_.WallMillis();
  if (!q.status().ok()) return q.status();
  return false;
}

Status SqliteStore::DeleteLeaseKeys(LeaseId lease, int64_t revision, bool* deleted_any) {
  std::vector<KeyValue> kvs;
  {
    Stmt q(*this, stmts_->kv_by_lease);
    q.Bind(1, lease);
    while (q.Next()) kvs.push_back(q.Kv());
    REACTOR_RETURN_IF_ERROR(q.status());
  }
  for (KeyValue& kv : kvs) {
    kv.mod_revision = revision;
    REACTOR_RETURN_IF_ERROR(RecordEvent(revision, WatchEvent::Type::kDelete, kv));
  }
  if (!kvs.empty()) {
    REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->delete_kv_by_lease).Bind(1, lease).Run());
    *deleted_any = true;
  }
  return Stmt(*this, stmts_->delete_lease).Bind(1, lease).Run();
}

Status SqliteStore::ExpireLeases() {
  std::lock_guard<std::mutex> lock(mu_);
  return ExpireLeasesLocked();
}

Status SqliteStore::ExpireLeasesLocked() {
  const int64_t now = clock_.WallMillis();
  // The common case, nothing expired, costs one indexed read and no write lock.
  {
    Stmt q(*this, stmts_->expired_leases);
    q.Bind(1, now);
    if (!q.Next()) return q.status();
  }
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/true));
  Status st = [&]() -> Status {
    std::vector<LeaseId> expired;
    {
      Stmt q(*this, stmts_->expired_leases);
      q.Bind(1, now);
      while (q.Next()) expired.push_back(q.Int(0));
      REACTOR_RETURN_IF_ERROR(q.status());
    }
    int64_t revision = 0;
    REACTOR_RETURN_IF_ERROR(ReadMeta(&revision, nullptr));
    bool wrote = false;
    // All leases that expired together go in one revision.
    for (LeaseId id : expired) REACTOR_RETURN_IF_ERROR(DeleteLeaseKeys(id, revision + 1, &wrote));
    if (wrote) {
      REACTOR_RETURN_IF_ERROR(SetRevision(revision + 1));
      REACTOR_RETURN_IF_ERROR(PruneHistory());
    }
    REACTOR_RETURN_IF_ERROR(CommitSql());
    if (wrote) committed_.notify_all();
    return Status::Ok();
  }();
  if (!st.ok()) Rollback();
  return st;
}

Status SqliteStore::EvalCompare(const Compare& c, bool* holds) {
  auto found = GetLocked(c.key);
  if (!found.ok()) return found.status();
  const std::optional<KeyValue>& kv = *found;
  int cmp = 0;
  switch (c.target) {
    case Compare::Target::kValue:
      // As in etcd: no value comparison holds for a missing key.
      if (!kv) {
        *holds = false;
        return Status::Ok();
      }
      cmp = kv->value.compare(c.value);  // bytewise (char_traits<char> compares as unsigned char)
      cmp = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
      break;
    case Compare::Target::kModRevision: cmp = CompareNumbers(kv ? kv->mod_revision : 0, c.number); break;
    case Compare::Target::kCreateRevision: cmp = CompareNumbers(kv ? kv->create_revision : 0, c.number); break;
    case Compare::Target::kVersion: cmp = CompareNumbers(kv ? kv->version : 0, c.number); break;
    case Compare::Target::kLease: cmp = CompareNumbers(kv ? kv->lease : 0, c.number); break;
  }
  *holds = OpHolds(c.op, cmp);
  return Status::Ok();
}

Status SqliteStore::ApplyOp(const Op& op, int64_t revision, bool* wrote) {
  switch (op.type) {
    case Op::Type::kPut: {
      if (op.lease != 0) {
        auto exists = LeaseExists(op.lease);
        if (!exists.ok()) return exists.status();
        if (!*exists) {
          return Status::NotFound("put '" + op.key + "': lease " + std::to_string(op.lease) + " not found");
        }
      }
      auto old = GetLocked(op.key);
      if (!old.ok()) return old.status();
      KeyValue kv;
      kv.key = op.key;
      kv.value = op.value;
      kv.create_revision = *old ? (*old)->create_revision : revision;
      kv.mod_revision = revision;
      kv.version = *old ? (*old)->version + 1 : 1;
      kv.lease = op.lease;
      REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->put_kv)
                                  .Bind(1, kv.key)
                                  .Bind(2, kv.value)
                                  .Bind(3, kv.create_revision)
                                  .Bind(4, kv.mod_revision)
                                  .Bind(5, kv.version)
                                  .Bind(6, kv.lease)
                                  .Run());
      REACTOR_RETURN_IF_ERROR(RecordEvent(revision, WatchEvent::Type::kPut, kv));
      *wrote = true;
      return Status::Ok();
    }
    case Op::Type::kDelete: {
      auto old = GetLocked(op.key);
      if (!old.ok()) return old.status();
      if (!*old) return Status::Ok();
      REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->delete_kv).Bind(1, op.key).Run());
      KeyValue kv;
      kv.key = op.key;
      kv.mod_revision = revision;
      REACTOR_RETURN_IF_ERROR(RecordEvent(revision, WatchEvent::Type::kDelete, kv));
      *wrote = true;
      return Status::Ok();
    }
    case Op::Type::kDeletePrefix: {
      auto kvs = RangeLocked(op.key);
      if (!kvs.ok()) return kvs.status();
      if (kvs->empty()) return Status::Ok();
      for (KeyValue& kv : *kvs) {
        kv.mod_revision = revision;
        REACTOR_RETURN_IF_ERROR(RecordEvent(revision, WatchEvent::Type::kDelete, kv));
      }
      std::optional<std::string> end = PrefixEnd(op.key);
      Stmt del(*this, end ? stmts_->range_delete_kv : stmts_->range_delete_kv_open);
      del.Bind(1, op.key);
      if (end) del.Bind(2, *end);
      REACTOR_RETURN_IF_ERROR(del.Run());
      *wrote = true;
      return Status::Ok();
    }
  }
  return Status::Internal("state store: unknown op type");
}

Result<TxnResult> SqliteStore::Commit(const Txn& txn) {
  for (const auto* ops : {&txn.success, &txn.failure}) {
    for (const Op& op : *ops) {
      if (op.type != Op::Type::kDeletePrefix && op.key.empty()) {
        return Status::InvalidArgument("state store: a put or delete needs a non-empty key");
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/true));
  TxnResult result;
  bool wrote = false;
  Status st = [&]() -> Status {
    int64_t revision = 0;
    REACTOR_RETURN_IF_ERROR(ReadMeta(&revision, nullptr));
    result.succeeded = true;
    for (const Compare& c : txn.compares) {
      bool holds = false;
      REACTOR_RETURN_IF_ERROR(EvalCompare(c, &holds));
      if (!holds) {
        result.succeeded = false;
        break;
      }
    }
    // Every write of the transaction shares the next revision.
    for (const Op& op : result.succeeded ? txn.success : txn.failure) {
      REACTOR_RETURN_IF_ERROR(ApplyOp(op, revision + 1, &wrote));
    }
    if (wrote) {
      REACTOR_RETURN_IF_ERROR(SetRevision(revision + 1));
      REACTOR_RETURN_IF_ERROR(PruneHistory());
    }
    result.revision = wrote ? revision + 1 : revision;
    return CommitSql();
  }();
  if (!st.ok()) {
    Rollback();
    return st;
  }
  if (wrote) committed_.notify_all();
  return result;
}

// --- leases ----------------------------------------------------------------

Result<LeaseId> SqliteStore::GrantLease(Duration ttl) {
  if (ttl.count() <= 0) return Status::InvalidArgument("state store: a lease needs a positive TTL");
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/true));
  LeaseId id = 0;
  Status st = [&]() -> Status {
    {
      Stmt q(*this, stmts_->read_last_lease);
      if (!q.Next())
        return q.status().ok() ? Status::Internal("state store " + path_ + ": meta row missing") : q.status();
      id = q.Int(0) + 1;  // never reused, even after a revoke or a restart
    }
    REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->set_last_lease).Bind(1, id).Run());
    REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->insert_lease)
                                .Bind(1, id)
                                .Bind(2, static_cast<int64_t>(ttl.count()))
                                .Bind(3, clock_.WallMillis() + ttl.count())
                                .Run());
    return CommitSql();
  }();
  if (!st.ok()) {
    Rollback();
    return st;
  }
  return id;
}

Status SqliteStore::KeepAlive(LeaseId lease) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/true));
  Status st = [&]() -> Status {
    int64_t ttl_ms = 0;
    {
      Stmt q(*this, stmts_->get_lease);
      q.Bind(1, lease);
      if (!q.Next()) {
        REACTOR_RETURN_IF_ERROR(q.status());
        return Status::NotFound("lease " + std::to_string(lease) + " not found (expired or revoked)");
      }
      ttl_ms = q.Int(0);
    }
    REACTOR_RETURN_IF_ERROR(
        Stmt(*this, stmts_->set_lease_expiry).Bind(1, lease).Bind(2, clock_.WallMillis() + ttl_ms).Run());
    return CommitSql();
  }();
  if (!st.ok()) Rollback();
  return st;
}

Status SqliteStore::RevokeLease(LeaseId lease) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/true));
  bool wrote = false;
  Status st = [&]() -> Status {
    {
      Stmt q(*this, stmts_->get_lease);
      q.Bind(1, lease);
      if (!q.Next()) {
        REACTOR_RETURN_IF_ERROR(q.status());
        return Status::NotFound("lease " + std::to_string(lease) + " not found (expired or revoked)");
      }
    }
    int64_t revision = 0;
    REACTOR_RETURN_IF_ERROR(ReadMeta(&revision, nullptr));
    REACTOR_RETURN_IF_ERROR(DeleteLeaseKeys(lease, revision + 1, &wrote));
    if (wrote) {
      REACTOR_RETURN_IF_ERROR(SetRevision(revision + 1));
      REACTOR_RETURN_IF_ERROR(PruneHistory());
    }
    return CommitSql();
  }();
  if (!st.ok()) {
    Rollback();
    return st;
  }
  if (wrote) committed_.notify_all();
  return Status::Ok();
}

Status SqliteStore::Compact(int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/true));
  Status st = [&]() -> Status {
    int64_t current = 0, compacted = 0;
    REACTOR_RETURN_IF_ERROR(ReadMeta(&current, &compacted));
    if (revision > current) {
      return Status::InvalidArgument("state store: cannot compact to revision " + std::to_string(revision) +
                                     ", the store is at " + std::to_string(current));
    }
    if (revision <= compacted) return CommitSql();
    REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->prune_history).Bind(1, revision).Run());
    REACTOR_RETURN_IF_ERROR(Stmt(*this, stmts_->set_compact_revision).Bind(1, revision).Run());
    return CommitSql();
  }();
  if (!st.ok()) Rollback();
  return st;
}

Status SqliteStore::BackupTo(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = dest != nullptr ? sqlite3_errmsg(dest) : sqlite3_errstr(rc);
    sqlite3_close_v2(dest);
    return Status::IOError("backup " + path, "cannot open: " + why);
  }
  sqlite3_backup* backup = sqlite3_backup_init(dest, "main", db_, "main");
  if (backup == nullptr) {
    std::string why = sqlite3_errmsg(dest);
    sqlite3_close_v2(dest);
    return Status::IOError("backup " + path, why);
  }
  // All pages in one step: under mu_ no write of ours can interleave, and a
  // write by another process restarts the copy inside step.
  rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  std::string why = rc == SQLITE_DONE ? "" : sqlite3_errstr(rc);
  if (rc == SQLITE_DONE) {
    // The copy keeps WAL mode; checkpoint it into the main file so that the
    // single file is the whole backup.
    rc = sqlite3_exec(dest, "PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) why = sqlite3_errmsg(dest);
  }
  sqlite3_close_v2(dest);
  if (!why.empty()) return Status::IOError("backup " + path, why);
  return Status::Ok();
}

// --- watch -----------------------------------------------------------------

Status SqliteStore::EventsAfter(const std::string& prefix, int64_t after_revision, std::vector<WatchEvent>* events) {
  std::optional<std::string> end = PrefixEnd(prefix);
  Stmt q(*this, end ? stmts_->events_range : stmts_->events_range_open);
  q.Bind(1, after_revision).Bind(2, prefix);
  if (end) q.Bind(3, *end);
  while (q.Next()) {
    WatchEvent e;
    e.kv.mod_revision = q.Int(0);
    e.type = q.Int(1) == static_cast<int64_t>(WatchEvent::Type::kDelete) ? WatchEvent::Type::kDelete
                                                                         : WatchEvent::Type::kPut;
    e.kv.key = q.Bytes(2);
    if (e.type == WatchEvent::Type::kPut) {
      e.kv.value = q.Bytes(3);
      e.kv.create_revision = q.Int(4);
      e.kv.version = q.Int(5);
      e.kv.lease = q.Int(6);
    }
    events->push_back(std::move(e));
  }
  return q.status();
}

Result<WatchResult> SqliteStore::Watch(const std::string& prefix, int64_t after_revision, Duration timeout) {
  using SteadyClock = std::chrono::steady_clock;
  // Clamped so that a caller's "forever" (Duration::max()) cannot overflow.
  const auto deadline = SteadyClock::now() + std::clamp(timeout, Duration(0), kMaxWatchTimeout);
  std::unique_lock<std::mutex> lock(mu_);
  int64_t checked_revision = -1;  // the revision whose history was last searched
  while (true) {
    REACTOR_RETURN_IF_ERROR(ExpireLeasesLocked());
    WatchResult result;
    int64_t compact_revision = 0;
    // The history and the revision must be one snapshot: another process may
    // commit between two reads.
    REACTOR_RETURN_IF_ERROR(Begin(/*immediate=*/false));
    Status st = ReadMeta(&result.revision, &compact_revision);
    if (st.ok() && after_revision < compact_revision) {
      result.compacted = true;
    } else if (st.ok() && result.revision != checked_revision) {
      st = EventsAfter(prefix, after_revision, &result.events);
    }
    if (st.ok()) st = CommitSql();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    if (result.compacted || !result.events.empty()) return result;
    checked_revision = result.revision;
    const auto now = SteadyClock::now();
    if (now >= deadline) return result;
    // Local commits signal committed_; other processes' are found by polling.
    committed_.wait_for(lock, std::min<SteadyClock::duration>(deadline - now, kWatchPoll));
  }
}

}  // namespace reactor
