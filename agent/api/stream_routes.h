// The live stream of the API (Server-Sent Events), shared by
// `reactor log NAME --follow` and the dashboard, and the bounded long poll
// of GET /v1/endpoints/NAME/log?wait=MS:
//
//   GET /v1/stream?log=NAME&after=SEQ&sample=A,B,...&managers=1
//     text/event-stream. With `log` (an endpoint, "_agent", or "*" for every
//     log): first the retained events with seq > SEQ (when `after` is given),
//     then each new one as it is recorded:
//         event: log / id: SEQ / data: {"log","seq","time_ms","kind","message"}
//     With `sample` (at most 100 endpoint names) or `managers=1`, every second:
//         event: sample / data: {"time_ms", "endpoints": {NAME: {...}}, "managers": [...]}
//     (TelemetrySource::Sample; one computation per stream per second, however
//     many charts a page draws). A comment line every 2 s keeps proxies open
//     and notices a client that went away.
//     400 on a bad parameter, 404 for an unknown endpoint, and 503 with
//     Retry-After when `cap` streams (long polls included) are already open.
//
// Threads: every open stream and long poll holds one thread of the API's
// pool for its duration. The pool is sized kApiWorkers + cap (api_server.cc),
// and a stream beyond the cap is refused at once, so streams can never take
// the workers that answer the rest of the API.
#pragma once

#include <string>
#include <vector>

#include "agent/api/event_hub.h"
#include "agent/common/clock.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/telemetry/telemetry_source.h"

namespace httplib {
class Server;
}

namespace reactor {

struct StreamContext {
  EventHub* hub = nullptr;
  StreamSlots* slots = nullptr;
  EventLog* events = nullptr;
  EndpointRegistry* registry = nullptr;
  TelemetrySource* telemetry = nullptr;  // null: no samples (`sample` is refused)
  Clock* clock = nullptr;
};

/// Registers GET /v1/stream. Every pointer must outlive the server.
void RegisterStreamRoutes(httplib::Server& server, StreamContext ctx);

/// The long poll: events of `log` ("" = the agent's) with seq > after, waiting
/// up to `wait` for the first. The caller holds a stream slot.
Result<std::vector<Event>> FollowLog(const StreamContext& ctx, const std::string& log, uint64_t after, Duration wait);

}  // namespace reactor
