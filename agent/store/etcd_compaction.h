// Periodic compaction of etcd's history by the agents that share it
// ([agent] etcd_compaction, default 5m). Without it every put (instance
// records, the traffic counters each host publishes every second, lease
// renewals of records) stays in etcd's history until etcd reaches its space
// quota (2 GiB by default), raises the NOSPACE alarm and refuses every write.
//
// What is kept: every revision of the last `retention` at least (up to about
// twice that just before a compaction); older superseded revisions go. The
// current value of every key is never compacted.
//
// Turn-taking (the scheme of Kubernetes' API server, which shares one etcd
// the same way): every `retention` each agent sends one transaction on the
// key EtcdCompactionKey(): "if its version is the one I saw last time, put
// the revision I saw last time; else read it". Exactly one agent per period
// wins; it then compacts to the revision it saw one period ago (its previous
// tick), so at least `retention` of history survives. The others read the
// version (no write) and try again next period. A compaction that etcd
// answers "required revision has been compacted" (another agent, or etcd's
// own --auto-compaction-retention, got further) counts as done. Compaction
// is not physical: etcd answers once it is committed and removes the old
// revisions in the background. Defragmentation (giving the freed pages back
// to the file system) is not done: it blocks the member while it runs, and
// etcd reuses the freed pages for new writes without it.
//
// Why compaction is safe for the agent's own watches and reads: a Store
// watch whose start is older than the compacted revision comes back with
// WatchResult::compacted, and every caller re-reads the prefix and watches
// from the new revision (api/event_hub.cc, events/event_log.cc,
// scaler/wake_source.cc); a paginated GetPrefix that meets a compaction
// between pages starts over (etcd_store.cc). An established watch stream is
// not cancelled by compaction; only one that is reopened after a member
// failure from a compacted revision is, and its caller re-reads as above.
// Nothing reads at an explicit old revision otherwise.
//
// Failures (etcd away, no leader) are counted and logged at most once a
// period of `kFailureLogInterval`, never fatal; each request gives up after
// about request_timeout + 2 s, and the work runs on a thread of its own,
// never on a caller's.
//
// Thread-safety: Tick and stats are thread-safe; Start once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "agent/common/clock.h"
#include "agent/store/etcd_connection.h"

namespace reactor {

/// The key agents take turns on (under kKeyRoot, so a role limited to
/// /reactor/ covers it). Not copied by CopyState.
std::string EtcdCompactionKey();

struct EtcdCompactionStats {
  int64_t ticks = 0;
  int64_t turns = 0;         // periods this agent won the turn
  int64_t others_turns = 0;  // periods another agent had (nothing sent but the claim)
  int64_t compactions = 0;   // compactions this agent made (or found already made)
  int64_t failures = 0;      // ticks that failed (claim or compaction)
  // ticks == turns + others_turns + failures (a turn whose compaction
  // failed counts as a failure only).
  int64_t compacted_revision = 0;  // the last revision this agent compacted to
  std::string last_error;          // "" after a tick that did not fail
};

class EtcdCompaction {
 public:
  /// Between ticks, failures are logged at most this often.
  static constexpr Duration kFailureLogInterval{10 * 60 * 1000};
  /// How long one request may keep trying other members.
  static constexpr Duration kRetryBudget{2000};

  /// REQUIRES retention > 0; `conn` outlives this. Does not contact etcd.
  EtcdCompaction(EtcdConnection& conn, Duration retention);
  /// Stops the thread (a tick under way ends within its request timeouts).
  ~EtcdCompaction();
  EtcdCompaction(const EtcdCompaction&) = delete;
  EtcdCompaction& operator=(const EtcdCompaction&) = delete;

  /// Runs Tick every `retention` on a thread of its own.
  void Start();

  enum class Outcome {
    kFailed,     // etcd away or refused: counted, logged, tried next period
    kNotMyTurn,  // another agent has this period (or this one's view was stale)
    kFirstTurn,  // this agent's turn, but it has no revision a period old yet
                 // (or it is being destroyed)
    kCompacted,  // compacted (or found compacted) to the revision a period old
  };
  /// One period's work: the claim transaction and, on this agent's turn, the
  /// compaction. Calls are serialised.
  Outcome Tick();

  EtcdCompactionStats stats();

 private:
  void Run();
  /// Counts one tick's outcome; logs a failure (`why`) rate-limited.
  void Record(Outcome outcome, const std::string& why);

  // Constant after construction.
  EtcdConnection& conn_;
  const Duration retention_;

  std::mutex tick_mu_;         // serialises Tick
  int64_t seen_version_ = 0;   // the key's version at the last tick; protected by tick_mu_
  int64_t seen_revision_ = 0;  // the header revision at the last tick (0: none yet); protected by tick_mu_

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                                  // protected by mu_
  EtcdCompactionStats stats_;                          // protected by mu_
  bool logged_failure_ = false;                        // protected by mu_
  std::chrono::steady_clock::time_point last_logged_;  // protected by mu_
  std::thread thread_;
};

}  // namespace reactor
