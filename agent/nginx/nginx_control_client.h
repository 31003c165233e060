// The agent's side of the control server in templates/sites.conf.mustache:
// HTTP over nginx's control unix socket, with libcurl.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/nginx/nginx_routes.h"

namespace reactor {

/// POSTs `members` as endpoint `name`'s live list. Unavailable when nginx
/// does not answer within `timeout` (connect included; a stopped nginx),
/// IOError when it cannot be reached (no socket, refused), InvalidArgument
/// when it refuses the list. Thread-safe.
Status PostMembers(const std::string& socket_path, const std::string& name, const std::vector<Member>& members,
                   Duration timeout);

/// POSTs the route table of the server `listen` (empty `routes`: the server
/// has none). Errors as PostMembers. Thread-safe.
Status PostRoutes(const std::string& socket_path, const std::string& listen, const std::vector<Route>& routes,
                  Duration timeout);

/// GETs `path` (with its query) from the control server; the body on HTTP
/// 200. `timeout` bounds the whole call (a long poll needs more than the
/// wait it asks for); a non-null `cancel` that turns true aborts it within
/// about a second (Unavailable). Errors as PostMembers. Thread-safe.
Result<std::string> GetControl(const std::string& socket_path, const std::string& path, Duration timeout,
                               const std::atomic<bool>* cancel = nullptr);

/// Where the control server of the nginx under `prefix` listens (dynamic
/// upstreams): PREFIX/control/control.sock.
std::string ControlSocketPath(const std::string& prefix);

}  // namespace reactor
