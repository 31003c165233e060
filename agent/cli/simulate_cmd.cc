// reactor simulate --rules 'RULES' --trace FILE [--endpoint FILE.conf] [flags]
//
// Rehearses scaling rules offline: replays a trace against the agent's own
// scaling policy on a simulated clock (agent/simulate/simulation.h) and
// scores it against an oracle. Exit 2 on bad input, with the line number
// for a bad trace line.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/cli/commands.h"
#include "agent/common/units.h"
#include "agent/endpoint/endpoint_parser.h"
#include "agent/simulate/simulation.h"
#include "agent/simulate/simulation_report.h"
#include "agent/simulate/trace.h"
#include "rules/rules.h"

namespace reactor::cli {
namespace {

constexpr const char* kModel = R"(The model:
  Rounds of one second. In second s the trace's load L(s) (requests) is offered;
  at its end the agent's own scaling policy decides (same code as the agent:
  rules, policy, stabilisation, clamp to [min, max], ramp limit) and instances
  are launched or removed.
  An instance serves from --start-delay after its launch until its removal and
  costs from launch to removal (removal is immediate: no drain).
  Each serving instance handles up to --capacity req/s; the load splits evenly
  over the serving instances, so the per-instance `rate` the rules see is
  L / serving, averaged over the window like the agent's collector does.
  response = base / (1 - rho), rho = L / (serving x capacity): the M/M/1 mean,
  capped at 20 x base (rho >= 0.95); response.p50/.p95/.p99 = mean x ln 2,
  ln 20, ln 100; active = rate x response (Little's law). bytes, errors and
  custom metrics are not modelled (their rules are skipped, with a warning).
  Overload second: L > 0 and L / serving >= capacity (or nothing serving).
  Oracle: ceil(L / capacity) instances clamped to [min, max], no start delay.
  The run starts with --initial serving instances (default: the oracle's count
  for the first second).
Trace: a CSV of `second,requests` (header optional) or an access log in the
agent's format (reactor metrics log-format), detected from the first line.)";

struct SimulateArgs {
  std::string rules;
  bool rules_given = false;
  std::string compare;
  std::string trace;
  std::string endpoint_file;
  std::string log_endpoint;
  std::string capacity = "20";
  std::string start_delay = "2s";
  std::string base_response;  // empty: the access log's mean, else 50ms
  std::string min, max, window, scale_down_delay, ramp_limit, policy, headroom, scale_up_window, predict, initial;
  std::string csv;
  std::string svg;
};

[[noreturn]] void BadInput(const std::string& message) {
  std::cerr << "reactor simulate: " << message << "\n";
  throw CliExit{kExitBadInput};
}

double ParseNonNegative(const std::string& flag, const std::string& v) {
  auto q = rules::ParseQuantity(v);
  if (!q) BadInput(flag + " '" + v + "': not a number >= 0");
  return *q;
}

// Applies one [scaling] key through the endpoint parser, so a flag is
// checked exactly as the same key in an endpoint file.
void SetScalingKey(EndpointConfig& cfg, const std::string& flag, const std::string& key, const std::string& v) {
  if (v.empty()) return;
  auto updated = SetEndpointKey(cfg, "scaling", key, v);
  if (!updated.ok()) BadInput(flag + " '" + v + "': " + updated.status().message());
  cfg = std::move(*updated);
}

EndpointConfig BaseConfig(const SimulateArgs& a) {
  EndpointConfig cfg;
  cfg.name = "simulate";
  cfg.scaling.max_instances = 20;     // simulate's default, unlike an endpoint file's 1
  cfg.process.command = "/bin/true";  // never run; makes the config valid for SetEndpointKey
  if (!a.endpoint_file.empty()) {
    std::ifstream in(a.endpoint_file);
    if (!in) BadInput("--endpoint " + a.endpoint_file + ": cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    std::string name = std::filesystem::path(a.endpoint_file).stem().string();
    if (!IsValidEndpointName(name)) name = "simulate";
    auto parsed = ParseEndpointIni(name, text.str());
    if (!parsed.ok()) BadInput("--endpoint " + a.endpoint_file + ":\n" + parsed.status().message());
    cfg = std::move(*parsed);
  }
  // Flags override the file; max before min so that raising both works.
  SetScalingKey(cfg, "--max", "max_instances", a.max);
  SetScalingKey(cfg, "--min", "min_instances", a.min);
  SetScalingKey(cfg, "--window", "window", a.window);
  SetScalingKey(cfg, "--scale-down-delay", "scale_down_delay", a.scale_down_delay);
  SetScalingKey(cfg, "--ramp-limit", "ramp_limit", a.ramp_limit);
  SetScalingKey(cfg, "--policy", "policy", a.policy);
  SetScalingKey(cfg, "--headroom", "headroom", a.headroom);
  SetScalingKey(cfg, "--scale-up-window", "scale_up_window", a.scale_up_window);
  SetScalingKey(cfg, "--predict", "predict", a.predict);
  return cfg;
}

EndpointConfig WithRules(EndpointConfig cfg, const std::string& flag, const std::string& text) {
  rules::ParseResult parsed = rules::ParseRules(text);
  if (!parsed.ok()) BadInput(flag + ": " + parsed.error->Format());
  cfg.scaling.rules = text;
  return cfg;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
      std::cerr << "reactor simulate: cannot write " << path << "\n";
      std::filesystem::remove(tmp);
      throw CliExit{kExitFailure};
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::cerr << "reactor simulate: cannot write " << path << ": " << ec.message() << "\n";
    std::filesystem::remove(tmp);
    throw CliExit{kExitFailure};
  }
}

void Run(const GlobalOptions& opts, const SimulateArgs& a) {
  SimulationOptions so;
  so.capacity = ParseNonNegative("--capacity", a.capacity);
  if (so.capacity <= 0) BadInput("--capacity must be > 0");
  auto delay = ParseDuration(a.start_delay);
  if (!delay.ok()) BadInput("--start-delay '" + a.start_delay + "': " + delay.status().message());
  so.start_delay = *delay;
  if (!a.base_response.empty()) so.base_response = ParseNonNegative("--base-response", a.base_response);
  if (!a.initial.empty()) {
    auto n = ParseInt(a.initial, 0, 10000);
    if (!n.ok()) BadInput("--initial '" + a.initial + "': " + n.status().message());
    so.initial = static_cast<int>(*n);
  }

  EndpointConfig base = BaseConfig(a);
  std::string rules_text = a.rules_given ? a.rules : base.scaling.rules;
  if (rules_text.empty()) BadInput("no rules: give --rules 'RULES' (or an --endpoint file with [scaling] rules)");
  std::vector<std::pair<std::string, EndpointConfig>> configs;
  configs.emplace_back(rules_text, WithRules(base, "--rules", rules_text));
  if (!a.compare.empty()) configs.emplace_back(a.compare, WithRules(base, "--compare", a.compare));

  auto trace = ReadTraceFile(a.trace, a.log_endpoint);
  if (!trace.ok()) BadInput(trace.status().message());
  if (a.base_response.empty()) {
    // An access log knows its response times: their mean is the base.
    if (auto mean = trace->MeanResponse()) so.base_response = *mean;
  }

  std::vector<SimulationResult> results;
  for (const auto& [label, cfg] : configs) {
    auto r = Simulate(*trace, cfg, so);
    if (!r.ok()) BadInput(r.status().message());
    for (const auto& m : r->unmodelled_metrics) {
      std::cerr << "warning: the model has no '" << m << "': rules on it are skipped\n";
    }
    results.push_back(std::move(*r));
  }
  std::vector<LabelledRun> runs;
  for (size_t i = 0; i < results.size(); ++i) runs.push_back({configs[i].first, &results[i]});

  if (!a.csv.empty()) WriteFile(a.csv, TimelineCsv(results[0]));
  if (!a.svg.empty()) WriteFile(a.svg, TimelineSvg(runs, so.capacity));
  if (opts.json) {
    if (results.size() == 1) {
      std::cout << SummaryJson(results[0].summary) << "\n";
    } else {
      std::cout << "[" << SummaryJson(results[0].summary) << "," << SummaryJson(results[1].summary) << "]\n";
    }
  } else {
    std::cout << SummaryTable(runs);
  }
}

}  // namespace

void AddSimulateCommand(CLI::App& app, GlobalOptions& opts) {
  auto a = std::make_shared<SimulateArgs>();
  CLI::App* sim = app.add_subcommand("simulate", "replay a load trace against scaling rules offline");
  sim->footer(kModel);
  sim->add_option_function<std::string>(
      "--rules",
      [a](const std::string& v) {
        a->rules = v;
        a->rules_given = true;
      },
      "the rules, e.g. '5 < rate < 20' (default: the --endpoint file's)");
  sim->add_option("--trace", a->trace, "CSV of second,requests, or an access log in the agent's format (- = stdin)")
      ->required();
  sim->add_option("--endpoint", a->endpoint_file, "take [scaling] keys from this endpoint file (flags override)");
  sim->add_option("--compare", a->compare, "a second rule set, run on the same trace and shown beside the first");
  sim->add_option("--capacity", a->capacity, "requests/s one instance serves (default 20)");
  sim->add_option("--start-delay", a->start_delay, "launch to serving (default 2s)");
  sim->add_option("--base-response", a->base_response,
                  "response time of an idle instance (default: the access log's mean, else 50ms)");
  sim->add_option("--min", a->min, "min_instances (default 1)");
  sim->add_option("--max", a->max, "max_instances (default 20)");
  sim->add_option("--window", a->window, "metrics window (default 5s)");
  sim->add_option("--scale-down-delay", a->scale_down_delay, "scale_down_delay (default 30s)");
  sim->add_option("--ramp-limit", a->ramp_limit, "launches or removals per round (default 5)");
  sim->add_option("--policy", a->policy,
                  "lean (default), reactor, midpoint (Gridcentric Reactor's) or hpa (the Kubernetes HPA's defaults)");
  sim->add_option("--headroom", a->headroom, "lean: margin below upper bounds (default 22%)");
  sim->add_option("--scale-up-window", a->scale_up_window, "lean: the window scale-up decisions use (default 1s)");
  sim->add_option("--predict", a->predict,
                  "lean: extrapolate a rising trend this far when scaling up (default 0 = off)");
  sim->add_option("--initial", a->initial, "serving instances at the start (default: the oracle's count)");
  sim->add_option("--log-endpoint", a->log_endpoint, "access log: count only this endpoint's lines");
  sim->add_option("--csv", a->csv, "write the per-second timeline (of the first rule set) to this CSV file");
  sim->add_option("--svg", a->svg, "write a chart of load, capacity and instances to this SVG file");
  sim->callback([&opts, a] { Run(opts, *a); });
}

}  // namespace reactor::cli
