// reactor set NAME SECTION KEY VALUE / get NAME [SECTION [KEY]] / show NAME
#include <iostream>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"

namespace reactor::cli {

void AddConfigCommands(CLI::App& app, GlobalOptions& opts) {
  auto* set = app.add_subcommand("set", "change one key of an endpoint's configuration");
  static std::string name, section, key, value;
  set->add_option("name", name, "endpoint name")->required();
  set->add_option("section", section, "section, e.g. scaling")->required();
  set->add_option("key", key, "key, e.g. rules")->required();
  set->add_option("value", value, "the new value")->required();
  set->callback([&opts] {
    ApiClient api(opts);
    nlohmann::json body = {{"section", section}, {"key", key}, {"value", value}};
    auto j = api.Call("PUT", "/v1/endpoints/" + UrlEncode(name) + "/config", body.dump());
    if (opts.json) std::cout << j.dump() << "\n";
  });

  auto* get = app.add_subcommand("get", "print an endpoint's configuration, a section, or one key");
  static std::string gname, gsection, gkey;
  get->add_option("name", gname, "endpoint name")->required();
  get->add_option("section", gsection, "section");
  get->add_option("key", gkey, "key");
  get->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("GET", "/v1/endpoints/" + UrlEncode(gname));
    const auto& config = j["config"];
    if (gsection.empty()) {
      if (opts.json) {
        std::cout << config.dump(2) << "\n";
        return;
      }
      std::cout << j["ini"].get<std::string>();
      return;
    }
    if (!config.contains(gsection)) {
      std::cerr << "reactor: unknown section [" << gsection << "]\n";
      throw CliExit{kExitBadInput};
    }
    const auto& sec = config[gsection];
    if (gkey.empty()) {
      if (opts.json) {
        std::cout << sec.dump(2) << "\n";
        return;
      }
      for (auto it = sec.begin(); it != sec.end(); ++it) {
        std::cout << it.key() << " = " << it.value().get<std::string>() << "\n";
      }
      return;
    }
    if (!sec.contains(gkey)) {
      std::cerr << "reactor: unknown key '" << gkey << "' in [" << gsection << "]\n";
      throw CliExit{kExitBadInput};
    }
    if (opts.json) {
      std::cout << sec[gkey].dump() << "\n";
    } else {
      std::cout << sec[gkey].get<std::string>() << "\n";
    }
  });

  auto* show = app.add_subcommand("show", "print an endpoint's INI as stored, with its state");
  static std::string sname;
  show->add_option("name", sname, "endpoint name")->required();
  show->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("GET", "/v1/endpoints/" + UrlEncode(sname));
    if (opts.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "# endpoint " << sname << ": " << j["state"].get<std::string>() << " (from "
              << j["source"].get<std::string>() << ")\n"
              << j["ini"].get<std::string>();
  });
}

}  // namespace reactor::cli
