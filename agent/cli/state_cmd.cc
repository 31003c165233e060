// reactor start|stop|pause NAME
#include <iostream>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"

namespace reactor::cli {

void AddStateCommands(CLI::App& app, GlobalOptions& opts) {
  static std::string name;
  struct Verb {
    const char* command;
    const char* state;
    const char* help;
  };
  static const Verb verbs[] = {
      {"start", "running", "run and scale an endpoint"},
      {"stop", "stopped", "drain and stop every instance of an endpoint (nginx answers 503)"},
      {"pause", "paused", "keep an endpoint's instances but stop scaling it"},
  };
  for (const Verb& v : verbs) {
    auto* sub = app.add_subcommand(v.command, v.help);
    sub->add_option("name", name, "endpoint name")->required();
    sub->callback([&opts, &v] {
      ApiClient api(opts);
      nlohmann::json body = {{"state", v.state}};
      auto j = api.Call("PUT", "/v1/endpoints/" + UrlEncode(name) + "/state", body.dump());
      if (opts.json) {
        std::cout << j.dump() << "\n";
      } else {
        std::cout << name << ": " << v.state << "\n";
      }
    });
  }
}

}  // namespace reactor::cli
