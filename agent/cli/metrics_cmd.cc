// reactor get-metrics NAME [--instances]
// reactor set-metrics NAME METRIC=VALUE... [--ttl 30s]
// reactor metrics log-format
// reactor metrics parse FILE...          (offline: SPEC §6)
#include <iostream>
#include <string>
#include <vector>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"
#include "agent/common/units.h"
#include "agent/metrics/custom_metrics.h"
#include "agent/metrics/log_format.h"
#include "agent/metrics/log_totals.h"
#include "rules/rules.h"

namespace reactor::cli {
namespace {

[[noreturn]] void BadInput(const std::string& message) {
  std::cerr << "reactor: " << message << "\n";
  throw CliExit{kExitBadInput};
}

struct MetricsArgs {
  std::string name;
  bool instances = false;
  std::vector<std::string> pairs;
  std::string ttl = "60s";
  std::vector<std::string> files;
};

void GetMetrics(const GlobalOptions& opts, const MetricsArgs& a) {
  ApiClient api(opts);
  std::string path = "/v1/endpoints/" + UrlEncode(a.name) + "/metrics";
  if (a.instances) path += "?instances=1";
  auto j = api.Call("GET", path);
  std::cout << (opts.json ? j.dump() : j.dump(2)) << "\n";
}

void SetMetrics(const GlobalOptions& opts, const MetricsArgs& a) {
  auto ttl = ParseDuration(a.ttl);
  if (!ttl.ok()) BadInput("--ttl '" + a.ttl + "': " + ttl.status().message());
  nlohmann::json metrics = nlohmann::json::object();
  for (const std::string& pair : a.pairs) {
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) BadInput("'" + pair + "': expected METRIC=VALUE, e.g. queue_depth=42");
    const std::string metric = pair.substr(0, eq);
    auto value = rules::ParseQuantity(pair.substr(eq + 1));
    if (!value) BadInput("'" + pair + "': the value must be a number >= 0, optionally with a unit (800ms, 2k)");
    Status st = CustomMetrics::Validate(metric, *value, *ttl);
    if (!st.ok()) BadInput(st.message());
    metrics[metric] = *value;
  }
  ApiClient api(opts);
  nlohmann::json body = {{"metrics", metrics}, {"ttl", FormatDuration(*ttl)}};
  auto j = api.Call("POST", "/v1/endpoints/" + UrlEncode(a.name) + "/metrics", body.dump());
  if (opts.json) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << a.name << ": set";
    for (const auto& [k, v] : metrics.items()) std::cout << " " << k << "=" << v.dump();
    std::cout << " for " << FormatDuration(*ttl) << "\n";
  }
}

void ParseFiles(const MetricsArgs& a) {
  LogTotals totals;
  for (const std::string& file : a.files) {
    Status st = totals.AddFile(file);
    if (!st.ok()) {
      std::cerr << "reactor: " << st.message() << "\n";
      throw CliExit{kExitFailure};
    }
  }
  std::cout << totals.ToJson() << "\n";
  std::cerr << "unparsed: " << totals.unparsed() << " of " << totals.lines() << " lines\n";
}

}  // namespace

void AddMetricsCommands(CLI::App& app, GlobalOptions& opts) {
  static MetricsArgs args;

  auto* get = app.add_subcommand("get-metrics", "an endpoint's current metrics (per-instance averages) as JSON");
  get->add_option("name", args.name, "endpoint name")->required();
  get->add_flag("--instances", args.instances, "also the per-backend counters");
  get->callback([&opts] { GetMetrics(opts, args); });

  auto* set = app.add_subcommand("set-metrics", "push custom metrics for an endpoint's rules");
  set->add_option("name", args.name, "endpoint name")->required();
  set->add_option("metrics", args.pairs, "METRIC=VALUE (e.g. queue_depth=42)")->required();
  set->add_option("--ttl", args.ttl, "how long the values hold (default 60s, at most 1h)");
  set->callback([&opts] { SetMetrics(opts, args); });

  auto* metrics = app.add_subcommand("metrics", "the access log: its format, offline parsing");
  metrics->require_subcommand(1);
  auto* format = metrics->add_subcommand("log-format", "print the nginx log_format the agent parses");
  format->callback([] { std::cout << kLogFormat << "\n"; });
  auto* parse = metrics->add_subcommand(
      "parse", "per-endpoint, per-backend totals of access-log files as JSON (unparsed count on stderr)");
  parse->add_option("files", args.files, "access-log files")->required()->check(CLI::ExistingFile);
  parse->callback([] { ParseFiles(args); });
}

}  // namespace reactor::cli
