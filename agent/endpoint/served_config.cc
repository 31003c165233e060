#include "agent/endpoint/served_config.h"

namespace reactor {

bool MayHoldRequests(const EndpointRecord& rec) {
  const EndpointConfig& c = rec.config;
  return rec.state == EndpointState::kRunning && rec.problem.empty() && c.cloud != CloudKind::kStatic &&
         c.scaling.max_instances >= 1 && c.lb.hold_timeout > Duration(0) && c.lb.hold_max >= 1;
}

EndpointConfig ServedConfig(const EndpointRecord& rec) {
  EndpointConfig c = rec.config;
  if (!MayHoldRequests(rec)) c.lb.hold_timeout = Duration(0);
  return c;
}

}  // namespace reactor
