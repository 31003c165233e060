// The agent's side of the control server in templates/sites.conf.mustache:
// HTTP over nginx's control unix socket, with libcurl.
#pragma once

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

}  // namespace reactor
