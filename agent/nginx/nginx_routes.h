// Routes (upstreams = dynamic, SPEC.md §7): which endpoint serves a request
// on one nginx server is decided in lua from route tables the agent pushes
// (templates/reactor_balancer.lua), so an endpoint added, changed or removed
// on a port nginx listens on needs no reload. Pure: endpoints in, tables and
// their encodings out.
//
// Encodings shared with the lua:
//   a table (the control POST /routes body): "<listen>\n" then one line per
//            route, "<endpoint> <path> <balance> <keepalive> <redirect|->"
//            followed by " <hold_ms> <hold_max>" when the route holds"
//   a file:  "server <listen>\n" then that server's route lines, per server
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/endpoint/endpoint_config.h"

namespace reactor {

/// One endpoint as its server's lua router sees it.
struct Route {
  std::string endpoint;
  std::string path;  // a prefix; always starts and ends with '/'
  Balance balance = Balance::kRoundRobin;
  int keepalive = 0;
  std::string redirect;  // empty = 503 when no member
  /// With no member: hold a request this long for one to come (0 = answer
  /// at once), at most hold_max at a time. See RouteHold.
  int64_t hold_ms = 0;
  int hold_max = 0;
  bool operator==(const Route& o) const {
    return endpoint == o.endpoint && path == o.path && balance == o.balance && keepalive == o.keepalive &&
           redirect == o.redirect && hold_ms == o.hold_ms && hold_max == o.hold_max;
  }
};

/// Route lines of each server, by listen key (NginxListen), sorted by path.
using RouteTables = std::map<std::string, std::vector<Route>>;

/// The nginx `listen` value of a url: "8080", "127.0.0.1:8080", "[::1]:8080".
/// It is also the server's key in the route tables.
std::string NginxListen(const EndpointUrl& url);

/// Identifies the nginx server an endpoint needs: its listen value and TLS
/// files. Endpoints with equal keys share one server; a key nginx does not
/// have yet needs a reload.
std::string ServerKey(const EndpointConfig& e);

/// REQUIRES: endpoints admitted together (AdmitEndpoints): valid, no two
/// with the same listen key and path.
RouteTables BuildRouteTables(const std::vector<EndpointConfig>& endpoints);
std::string EncodeRouteTable(const std::string& listen, const std::vector<Route>& routes);
std::string EncodeRoutesFile(const RouteTables& tables);

/// What a set of wanted endpoints becomes: those nginx serves together, and
/// those held back, with why.
struct Admission {
  std::vector<EndpointConfig> admitted;
  std::map<std::string, std::string> held_back;  // endpoint name -> reason
};

/// A configuration of an endpoint that nginx -t refused, with why.
struct RefusedEndpoint {
  EndpointConfig config;
  std::string why;
};

/// Decides which of `wanted` nginx serves: an endpoint is held back when it
/// fails validation (CheckNginxEndpoint), is exactly a configuration in
/// `refused`, or conflicts with one admitted before it (a second endpoint
/// of the same name, the same listen key and path, or TLS files that differ
/// from those of its shared listen key). Endpoints in `current` (what nginx
/// serves now) are admitted first, so a newcomer never displaces them; a
/// held-back endpoint that has a configuration in `current` keeps serving
/// that one. Deterministic.
Admission AdmitEndpoints(const std::vector<EndpointConfig>& wanted,
                         const std::map<std::string, EndpointConfig>& current,
                         const std::map<std::string, RefusedEndpoint>& refused);

}  // namespace reactor
