// `reactor rules check` and `reactor rules ideal`: the rule language offline
// (SPEC.md §5). Output is JSON on stdout; warnings and errors go to stderr.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/cli/commands.h"
#include "rules/rules.h"

namespace reactor::cli {
namespace {

using Json = nlohmann::ordered_json;

/// A number as JSON: integral values print without ".0" (`1`, not `1.0`).
Json Number(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9.0e15) return static_cast<std::int64_t>(x);
  return x;
}

Json Bound(const std::optional<double>& b) { return b ? Number(*b) : Json(nullptr); }

Json RangeJson(const rules::Range& r) { return Json::array({r.min, r.max ? Json(*r.max) : Json(nullptr)}); }

/// Parses the rules or prints the error and exits with kExitBadInput.
rules::RuleSet ParseOrExit(const std::string& text) {
  rules::ParseResult parsed = rules::ParseRules(text);
  if (!parsed.ok()) {
    std::cerr << parsed.error->Format() << "\n";
    throw CliExit{kExitBadInput};
  }
  return std::move(*parsed.rules);
}

void WarnIfNeverScalesDown(const rules::RuleSet& set) {
  std::string warning = rules::ScaleDownWarning(set);
  if (!warning.empty()) std::cerr << "warning: " << warning << "\n";
}

[[noreturn]] void BadInput(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  throw CliExit{kExitBadInput};
}

/// "rate=3.3" → {"rate", 3.3}; the value may carry a unit ("response=200ms").
std::pair<std::string, double> ParseMetricFlag(const std::string& flag) {
  size_t eq = flag.find('=');
  if (eq == std::string::npos || eq == 0) BadInput("--metric '" + flag + "': expected NAME=VALUE, e.g. rate=3.3");
  std::string name = flag.substr(0, eq);
  if (!rules::IsMetricName(name)) {
    BadInput("--metric '" + flag + "': '" + name + "' is not a metric name");
  }
  std::optional<double> value = rules::ParseQuantity(flag.substr(eq + 1));
  if (!value) {
    BadInput("--metric '" + flag + "': '" + flag.substr(eq + 1) +
             "' is not a non-negative number (units: ms s k M G KB MB GB)");
  }
  return {name, *value};
}

struct IdealOptions {
  std::string rules;
  long instances = 0;
  long min = 0;
  long max = 0;
  std::vector<std::string> metrics;
};

void RunCheck(const std::string& text) {
  rules::RuleSet set = ParseOrExit(text);
  Json out = Json::array();
  for (const rules::Rule& r : set.rules) {
    out.push_back(Json{{"metric", r.metric},
                       {"lower", Bound(r.lower)},
                       {"lower_inclusive", r.lower_inclusive},
                       {"upper", Bound(r.upper)},
                       {"upper_inclusive", r.upper_inclusive}});
  }
  std::cout << out.dump() << "\n";
  WarnIfNeverScalesDown(set);
}

void RunIdeal(const IdealOptions& opt) {
  if (opt.instances < 0) BadInput("--instances must be 0 or more");
  if (opt.min < 0) BadInput("--min must be 0 or more");
  if (opt.max < opt.min) {
    BadInput("--min (" + std::to_string(opt.min) + ") must not exceed --max (" + std::to_string(opt.max) + ")");
  }
  std::map<std::string, double> metrics;
  for (const std::string& flag : opt.metrics) {
    auto [name, value] = ParseMetricFlag(flag);
    if (!metrics.emplace(name, value).second) BadInput("--metric '" + name + "' is given more than once");
  }
  rules::RuleSet set = ParseOrExit(opt.rules);
  rules::Evaluation ev = rules::Evaluate(set, opt.instances, metrics, opt.min, opt.max);

  Json out{{"ideal", RangeJson(ev.ideal)},
           {"range", ev.range ? RangeJson(*ev.range) : Json(nullptr)},
           {"target", ev.target}};
  std::cout << out.dump() << "\n";
  for (const std::string& m : ev.missing_metrics) {
    std::cerr << "warning: no --metric " << m << "=VALUE given; the rules on '" << m << "' were skipped\n";
  }
  if (!ev.range) std::cerr << "warning: the rules contradict each other; keeping the current count\n";
  WarnIfNeverScalesDown(set);
}

}  // namespace

void AddRulesCommands(CLI::App& app) {
  CLI::App* rules = app.add_subcommand("rules", "check and evaluate scaling rules offline");
  rules->require_subcommand(1);

  auto check_text = std::make_shared<std::string>();
  CLI::App* check = rules->add_subcommand("check", "parse a rule list and print it as JSON");
  check->add_option("RULES", *check_text, "the rules, e.g. '0.25 < rate < 1'")->required();
  check->callback([check_text] { RunCheck(*check_text); });

  auto ideal_opts = std::make_shared<IdealOptions>();
  CLI::App* ideal = rules->add_subcommand(
      "ideal", "compute the ideal instance range, the clamped range and the target for given metrics");
  ideal->add_option("--rules", ideal_opts->rules, "the rules, e.g. '0.25 < rate < 1'")->required();
  ideal->add_option("--instances", ideal_opts->instances, "current number of instances")->required();
  ideal->add_option("--min", ideal_opts->min, "min_instances")->required();
  ideal->add_option("--max", ideal_opts->max, "max_instances")->required();
  ideal->add_option("--metric", ideal_opts->metrics, "NAME=VALUE, a per-instance average in base units (repeatable)");
  ideal->callback([ideal_opts] { RunIdeal(*ideal_opts); });
}

}  // namespace reactor::cli
