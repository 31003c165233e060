// The endpoint owner (SPEC §13, "the owner decides"): for each endpoint this
// host owns, decides how many instances it should have (the scaling policy),
// where new ones go (placement, reserving slots by compare-and-swap on the
// host's slot record), which to drain, and replaces those that failed or
// whose host is gone. It writes desired state only — instance records, each
// write fenced by the owner key's create revision — and never runs anything:
// each host's actuator does.
//
// Thread model: the loop thread only.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/cluster/owner_election.h"
#include "agent/common/clock.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/runtime/round.h"
#include "agent/scaler/scaling_policy.h"
#include "agent/store/store.h"

namespace reactor {

class EndpointOwner {
 public:
  struct Options {
    std::string manager;
    /// Called once an unmanaged endpoint is gone, to drop what other parts
    /// keep for it (custom metrics). May be empty.
    std::function<void(const std::string& endpoint)> on_endpoint_removed;
  };
  /// Every reference must outlive the owner.
  EndpointOwner(Options options, Store& store, EventLog& events, EndpointRegistry& registry, OwnerElection& election,
                ScalingPolicy& policy, Clock& clock);

  /// Decides for `er` (an endpoint this host owns, with its fence).
  void Decide(Round& round, EndpointRound& er, const Fence& fence);
  /// Drops what is kept for endpoints no longer in the round.
  void Forget(const std::set<std::string>& endpoints);

 private:
  struct Backoff {
    int failures = 0;
    int64_t next_try_ms = 0;  // wall clock
    std::string last_error;
  };
  /// False when the write failed its fence: stop deciding for the endpoint.
  bool Ok(const std::string& endpoint, const Status& st);
  bool ReplaceLost(Round& round, EndpointRound& er, const Fence& fence);
  bool ReconcileStatic(EndpointRound& er, const Fence& fence);
  bool Scale(Round& round, EndpointRound& er, const Fence& fence);
  bool MoveOffDrainingHosts(Round& round, EndpointRound& er, const Fence& fence, int target);
  /// Returns how many it placed; false in `*fenced` when ownership was lost.
  int Place(Round& round, EndpointRound& er, const Fence& fence, int count, bool* fenced);
  int Drain(Round& round, EndpointRound& er, const Fence& fence, int count, const std::string& why, bool* fenced);
  void NoteStartFailure(const std::string& endpoint, int64_t at_ms, const std::string& why);
  std::string NewInstanceId(const std::string& endpoint);

  const Options options_;
  Store& store_;
  EventLog& events_;
  EndpointRegistry& registry_;
  OwnerElection& election_;
  ScalingPolicy& policy_;
  Clock& clock_;

  std::map<std::string, Backoff> backoff_;
  std::map<std::string, std::string> last_decision_;
  std::set<std::string> held_;                           // endpoints whose last decision held a scale-down
  std::map<std::string, std::string> waiting_;           // endpoint → the "no room" reason said in its log
  std::map<std::string, std::string> moving_;            // endpoint → replacement launched for a draining host
  std::map<std::string, size_t> rr_cursor_;              // round-robin placement position per endpoint
  std::map<std::string, std::string> invalid_reported_;  // endpoint → the problem said in its log
  uint64_t id_counter_ = 0;
};

}  // namespace reactor
