// reactor list / status NAME / instances NAME / managers
#include <iostream>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"
#include "agent/cli/table.h"

namespace reactor::cli {

namespace {

std::string Cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string RangeText(const nlohmann::json& r) {
  if (!r.is_array()) return "contradicting rules";
  return "[" + Cell(r[0]) + ", " + (r[1].is_null() ? std::string("∞") : Cell(r[1])) + "]";
}

}  // namespace

void AddListCommands(CLI::App& app, GlobalOptions& opts) {
  auto* list = app.add_subcommand("list", "list managed endpoints");
  list->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("GET", "/v1/endpoints");
    if (opts.json) {
      std::cout << j["endpoints"].dump() << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : j["endpoints"]) {
      rows.push_back({Cell(e["name"]), Cell(e["state"]), Cell(e["cloud"]), Cell(e["url"]),
                      Cell(e["healthy"]) + "/" + Cell(e["instances"]), Cell(e["target"])});
    }
    PrintTable({"NAME", "STATE", "CLOUD", "URL", "HEALTHY", "TARGET"}, rows);
  });

  auto* status = app.add_subcommand("status", "an endpoint's state, instances, range and last decision");
  static std::string sname;
  status->add_option("name", sname, "endpoint name")->required();
  status->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("GET", "/v1/endpoints/" + UrlEncode(sname) + "/status");
    if (opts.json) {
      nlohmann::json out = {{"name", j["name"]},           {"state", j["state"]},
                            {"instances", j["instances"]}, {"healthy", j["healthy"]},
                            {"target", j["target"]},       {"range", j["range"]},
                            {"draining", j["draining"]},   {"last_decision", j["last_decision"]},
                            {"problem", j["problem"]},     {"phase", j.value("phase", "")}};
      std::cout << out.dump() << "\n";
      return;
    }
    std::cout << "endpoint:   " << Cell(j["name"]) << " (" << Cell(j["url"]) << ")\n"
              << "state:      " << Cell(j["state"])
              << (j.value("phase", "").empty() ? std::string() : " (" + j.value("phase", "") + ")") << "\n"
              << "instances:  " << Cell(j["instances"]) << " (" << Cell(j["healthy"]) << " healthy, "
              << Cell(j["draining"]) << " draining)\n"
              << "target:     " << Cell(j["target"]) << "  range " << RangeText(j["range"]) << "\n";
    if (!j["last_decision"].get<std::string>().empty()) std::cout << "decision:   " << Cell(j["last_decision"]) << "\n";
    if (!j["problem"].get<std::string>().empty()) std::cout << "problem:    " << Cell(j["problem"]) << "\n";
  });

  auto* instances = app.add_subcommand("instances", "an endpoint's instances and their states");
  static std::string iname;
  instances->add_option("name", iname, "endpoint name")->required();
  instances->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("GET", "/v1/endpoints/" + UrlEncode(iname) + "/instances");
    if (opts.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& i : j) {
        out.push_back({{"id", i["id"]}, {"address", i["address"]}, {"state", i["state"]}, {"manager", i["manager"]}});
      }
      std::cout << out.dump() << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : j) {
      rows.push_back({Cell(i["id"]), Cell(i["address"]), Cell(i["state"]), Cell(i["manager"]), Cell(i["reason"])});
    }
    PrintTable({"ID", "ADDRESS", "STATE", "MANAGER", "REASON"}, rows);
  });

  auto* managers = app.add_subcommand("managers", "the hosts that run instances, with their slots");
  static std::string verb, target;
  managers->add_option("action", verb, "cordon | uncordon | drain (default: list)")
      ->check(CLI::IsMember({"cordon", "uncordon", "drain"}));
  managers->add_option("name", target, "the manager to cordon, uncordon or drain");
  managers->callback([&opts] {
    ApiClient api(opts);
    if (!verb.empty()) {
      if (target.empty()) {
        std::cerr << "reactor managers " << verb << ": needs the manager's NAME\n";
        throw CliExit{kExitBadInput};
      }
      auto j = api.Call("POST", "/v1/managers/" + target + "/" + verb);
      if (opts.json)
        std::cout << j.dump() << "\n";
      else if (verb == "drain")
        std::cout << target << " draining: its instances move elsewhere one at a time\n";
      else
        std::cout << target << (verb == "cordon" ? " cordoned: no new placements" : " uncordoned") << "\n";
      return;
    }
    auto j = api.Call("GET", "/v1/managers");
    if (opts.json) {
      std::cout << j.dump() << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : j) {
      std::string lease = "-";
      if (m.contains("lease_left_ms") && m["lease_left_ms"].is_number()) {
        char text[32];
        std::snprintf(text, sizeof text, "%.1fs", m["lease_left_ms"].get<double>() / 1000.0);
        lease = text;
      }
      rows.push_back({Cell(m["name"]), Cell(m["address"]), Cell(m["state"]),
                      Cell(m["slots_used"]) + "/" + Cell(m["slots"]), Cell(m["instances"]), Cell(m["owned"]), lease});
    }
    PrintTable({"NAME", "ADDRESS", "STATE", "SLOTS", "INSTANCES", "OWNED", "LEASE LEFT"}, rows);
  });
}

}  // namespace reactor::cli
