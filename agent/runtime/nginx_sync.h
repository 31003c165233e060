// The nginx sync (SPEC §13): on every agent, serves every endpoint with every
// active instance in the cluster, wherever it runs. Instances of hosts whose
// lease is gone leave the upstreams at once (before their owner replaces
// them); static instances stay whoever checks them.
//
//
// Sites are also applied between rounds, the moment an endpoint record
// changes (RouteWatcher, its own thread): a round at 1,000 endpoints and
// 10,000 instances takes seconds, a route change must not wait for one. The
// two never undo each other: each site is kept with the mod revision of the
// record it came from, a round's older copy of a record does not replace a
// newer one, and a round removes a site only if the record it was built
// from is no newer than the revision the round read the endpoints at (nor
// brings back one deleted after that read).
//
// Thread model: Push on the loop thread; ApplyChanged from any thread (the
// site book and the calls into nginx it makes are serialized by sites_mu_).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/endpoint/endpoint_registry.h"

#include "agent/events/event_log.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/runtime/round.h"

namespace reactor {

class NginxSync {
 public:
  NginxSync(NginxController& nginx, EventLog& events) : nginx_(nginx), events_(events) {}

  /// Sites for every endpoint whose config is known, and their members.
  void Push(const Round& round);

  /// One endpoint record changed: `rec` as read now, or nullopt when it is
  /// gone (deleted at `revision`). Applies the sites to nginx unless the
  /// book already has a newer copy.
  struct Change {
    std::string name;
    std::optional<EndpointRecord> rec;
    int64_t revision = 0;
  };
  Status ApplyChanged(const std::vector<Change>& changes);

 private:
  struct Site {
    int64_t revision = 0;  // mod revision of the record it was served from
    size_t index = 0;      // in configs_
  };
  /// REQUIRES: sites_mu_. The site of `rec` (a copy only when its revision
  /// changed); EraseLocked removes one.
  void UpsertLocked(const EndpointRecord& rec);
  void EraseLocked(std::map<std::string, Site>::iterator it);

  NginxController& nginx_;
  EventLog& events_;
  std::map<std::string, std::vector<Member>> pushed_members_;  // loop thread
  std::mutex sites_mu_;
  std::map<std::string, Site> sites_;  // protected by sites_mu_
  // What nginx is given (ApplySites), kept rather than rebuilt per change:
  // copying 1,000 configs took milliseconds; protected by sites_mu_.
  std::vector<EndpointConfig> configs_;
  std::map<std::string, int64_t> deleted_;  // deleted between rounds, at; protected by sites_mu_
  bool primed_ = false;                     // a round filled sites_; protected by sites_mu_
};

}  // namespace reactor
