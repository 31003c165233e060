// Who decides for each endpoint (SPEC §13): one owner at a time, elected with
// the owner key /reactor/owners/<endpoint>, created under the owning host's
// lease by a transaction that requires it absent. The key's create revision
// is the fencing token: every write the owner makes compares it (Fence), and
// a failed compare means the owner stops acting for that endpoint at once.
//
// Owners are spread over the hosts by rendezvous hashing: the preferred host
// claims an unowned endpoint at once, any other host after the key has been
// missing for a lease TTL (the preferred one may be stuck). An owner hands an
// endpoint to its preferred host once that host has been up for two TTLs,
// so ownership rebalances when hosts join. Not /v3/lock (etcd issue 11456).
//
// An owner that has not renewed its lease for lease_ttl minus a margin
// (monotonic clock) stops deciding before anyone else could take over; a
// successor waits `takeover_wait` (a lease TTL plus etcd's election timeout:
// etcd 3.4 resets lease TTLs on a leader change) before destructive actions.
//
// Thread model: Refresh and the queries are called by the loop thread only;
// Owned() may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/cluster/cluster_view.h"
#include "agent/common/clock.h"
#include "agent/events/event_log.h"
#include "agent/store/store.h"

namespace reactor {

class OwnerElection {
 public:
  struct Options {
    std::string self;
    Duration lease_ttl{5000};
    Duration takeover_wait{0};  // 0: destructive actions at once (a single host, tests)
    /// This host's lease for owner keys (0 = none: keys without a lease, for
    /// stores used by one process only, as in tests).
    std::function<LeaseId()> lease;
    /// How long the lease surely still holds; empty = always (no membership).
    std::function<Duration()> lease_left;
  };
  OwnerElection(Options options, Store& store, EventLog& events, Clock& clock);

  /// False while this host's lease may be about to expire: decide nothing.
  bool MayDecide() const;

  /// Claims, keeps, hands off and loses owner keys for `endpoints` against
  /// this round's view (whose `owners` it updates with its own claims).
  void Refresh(const std::vector<std::string>& endpoints, ClusterView& view);

  /// This host's fence for an endpoint it owns, or nullopt.
  std::optional<Fence> FenceFor(const std::string& endpoint) const;
  /// Past the takeover wait: scale-down, drain and retirement are allowed.
  bool MayDestroy(const std::string& endpoint) const;
  /// Called when a fenced write failed its compare: ownership is gone.
  void Lost(const std::string& endpoint, const std::string& why);
  /// The owner the view names (value of the owner key), "" if none.
  static std::string OwnerOf(const ClusterView& view, const std::string& endpoint);

  /// How many endpoints this host owns. Thread-safe.
  int Owned() const;

 private:
  void Claim(const std::string& endpoint, ClusterView& view, const std::string& previous);

  const Options options_;
  Store& store_;
  EventLog& events_;
  Clock& clock_;

  std::map<std::string, Fence> fences_;
  std::map<std::string, TimePoint> destroy_after_;
  std::map<std::string, TimePoint> missing_since_;    // endpoint → first round its owner key was absent
  std::map<std::string, std::string> last_owner_;     // endpoint → the owner last seen
  std::map<std::string, TimePoint> host_seen_since_;  // host → first round it was seen up
  mutable std::mutex count_mu_;
  int owned_ = 0;  // protected by count_mu_
};

}  // namespace reactor
