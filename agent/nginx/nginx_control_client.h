// The agent's side of the control server in templates/sites.conf.mustache:
// HTTP over nginx's control unix socket, with libcurl.
#pragma once

#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/nginx/nginx_controller.h"

namespace reactor {

/// POSTs `members` as endpoint `name`'s live list. Unavailable when nginx
/// cannot be reached or refuses the list. Thread-safe.
Status PostMembers(const std::string& socket_path, const std::string& name, const std::vector<Member>& members,
                   Duration timeout);

}  // namespace reactor
