// The nginx sync (SPEC §13): on every agent, serves every endpoint with every
// active instance in the cluster, wherever it runs. Instances of hosts whose
// lease is gone leave the upstreams at once (before their owner replaces
// them); static instances stay whoever checks them.
//
// Thread model: the loop thread only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/events/event_log.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/runtime/round.h"

namespace reactor {

class NginxSync {
 public:
  NginxSync(NginxController& nginx, EventLog& events) : nginx_(nginx), events_(events) {}

  /// Sites for every endpoint whose config is known, and their members.
  void Push(const Round& round);

 private:
  NginxController& nginx_;
  EventLog& events_;
  std::map<std::string, std::vector<Member>> pushed_members_;
};

}  // namespace reactor
