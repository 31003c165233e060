// reactor log NAME [--follow]
#include <ctime>
#include <iostream>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"

namespace reactor::cli {

namespace {

std::string FormatTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms % 1000));
  return out;
}

}  // namespace

void AddLogCommand(CLI::App& app, GlobalOptions& opts) {
  auto* log = app.add_subcommand("log", "an endpoint's event log");
  static std::string name;
  static bool follow = false;
  log->add_option("name", name, "endpoint name")->required();
  log->add_flag("--follow,-f", follow, "keep printing new events");
  log->callback([&opts] {
    ApiClient api(opts);
    uint64_t after = 0;
    bool first = true;
    while (first || follow) {
      std::string path = "/v1/endpoints/" + UrlEncode(name) + "/log?after=" + std::to_string(after);
      if (!first) path += "&wait=10000";
      auto j = api.Call("GET", path);
      for (const auto& e : j["events"]) {
        if (opts.json) {
          std::cout << e.dump() << "\n";
        } else {
          std::cout << FormatTime(e["time_ms"].get<int64_t>()) << "  " << e["kind"].get<std::string>() << "  "
                    << e["message"].get<std::string>() << "\n";
        }
      }
      std::cout.flush();
      after = j["next"].get<uint64_t>();
      first = false;
    }
  });
}

}  // namespace reactor::cli
