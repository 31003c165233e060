#include "agent/nginx/nginx_members.h"

#include <sstream>

#include "agent/nginx/nginx_render.h"

namespace reactor {

std::string EncodeMemberList(const std::vector<Member>& members) {
  std::string out;
  for (const Member& m : members) {
    if (!out.empty()) out += ' ';
    out += m.address + "=" + std::to_string(m.weight);
  }
  return out;
}

std::string EncodeMembersFile(const MemberLists& lists) {
  std::string out;
  for (const auto& [name, members] : lists) {
    out += name;
    if (!members.empty()) out += " " + EncodeMemberList(members);
    out += "\n";
  }
  return out;
}

MemberLists ParseMembersFile(const std::string& text) {
  MemberLists lists;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name, token;
    if (!(words >> name) || !CheckEndpointName(name).ok()) continue;
    std::vector<Member> members;
    bool ok = true;
    while (words >> token) {
      size_t eq = token.rfind('=');
      if (eq == std::string::npos || eq + 1 == token.size() ||
          token.find_first_not_of("0123456789", eq + 1) != std::string::npos || token.size() - eq > 5) {
        ok = false;
        break;
      }
      Member m{token.substr(0, eq), std::stoi(token.substr(eq + 1))};
      if (!CheckMember(m, false).ok()) {
        ok = false;
        break;
      }
      members.push_back(m);
    }
    if (ok) lists[name] = std::move(members);
  }
  return lists;
}

}  // namespace reactor
