// The encoding of upstream member lists shared by the agent and the lua
// balancer (templates/reactor_balancer.lua):
//   a list:  "host:port=weight host:port=weight ..." (the control POST body)
//   a file:  one line per endpoint, "<name> <list>" (the persisted state
//            nginx loads at start)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/nginx/nginx_controller.h"

namespace reactor {

using MemberLists = std::map<std::string, std::vector<Member>>;

std::string EncodeMemberList(const std::vector<Member>& members);
std::string EncodeMembersFile(const MemberLists& lists);
/// Parses a members file; malformed lines are skipped (the file is ours, and
/// nginx skips them too).
MemberLists ParseMembersFile(const std::string& text);

}  // namespace reactor
