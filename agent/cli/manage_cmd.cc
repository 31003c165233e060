// reactor manage NAME [FILE|-] / reactor unmanage NAME
#include <fstream>
#include <iostream>
#include <sstream>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"
#include "rules/rules.h"

namespace reactor::cli {

namespace {

std::string ReadInput(const std::string& file) {
  std::stringstream ss;
  if (file.empty() || file == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(file);
  if (!in) {
    std::cerr << "reactor: cannot read " << file << "\n";
    throw CliExit{kExitBadInput};
  }
  ss << in.rdbuf();
  return ss.str();
}

void WarnIfNoScaleDown(const std::string& text) {
  auto parsed = rules::ParseRules(text);
  if (!parsed.ok()) return;
  std::string warning = rules::ScaleDownWarning(*parsed.rules);
  if (!warning.empty()) std::cerr << "reactor: warning: " << warning << "\n";
}

}  // namespace

void AddManageCommands(CLI::App& app, GlobalOptions& opts) {
  auto* manage = app.add_subcommand("manage", "create or update an endpoint from an INI file (or stdin)");
  static std::string name, file;
  manage->add_option("name", name, "endpoint name")->required();
  manage->add_option("file", file, "INI file, or - for stdin (default)");
  manage->callback([&opts] {
    std::string ini = ReadInput(file);
    ApiClient api(opts);
    auto j = api.Call("PUT", "/v1/endpoints/" + UrlEncode(name), ini, "text/plain");
    if (opts.json) {
      std::cout << j.dump() << "\n";
    } else {
      std::cout << (j.value("created", false) ? "created " : "updated ") << name << "\n";
    }
    // Rule sets that can never scale down deserve a warning (SPEC §5).
    auto got = api.Call("GET", "/v1/endpoints/" + UrlEncode(name));
    std::string rules = got["config"]["scaling"].value("rules", "");
    if (!rules.empty()) WarnIfNoScaleDown(rules);
  });

  auto* unmanage = app.add_subcommand("unmanage", "stop managing an endpoint (drains, then removes it)");
  static std::string uname;
  unmanage->add_option("name", uname, "endpoint name")->required();
  unmanage->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("DELETE", "/v1/endpoints/" + UrlEncode(uname));
    if (opts.json) {
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "unmanaged " << uname << " (draining its instances)\n";
    }
  });
}

}  // namespace reactor::cli
