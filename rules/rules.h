// The scaling-rule language (SPEC.md §5): parse a rule list, and compute the
// ideal instance range, the clamped range and the target from per-instance
// metric averages. A library of its own: depends on PEGTL only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reactor::rules {

/// One rule: [lower OP] metric [OP upper], numbers in base units
/// (seconds, bytes, plain counts). At least one bound is present.
struct Rule {
  std::string metric;
  std::optional<double> lower;
  bool lower_inclusive = false;  // `<=` on the lower side
  std::optional<double> upper;
  bool upper_inclusive = false;
  std::string text;  // the rule as written, trimmed (for event messages)
};

struct RuleSet {
  std::vector<Rule> rules;
};

/// Why a rule list was rejected. `column` is 1-based within the line `line`
/// (1-based); `Format()` renders the offending line with a caret under the column.
struct ParseError {
  int line = 1;
  int column = 1;
  std::string message;      // "expected a number or metric name"
  std::string source_line;  // the text of that line
  /// "rules:1:7: expected ...\n  0 < rate <\n            ^"
  std::string Format() const;
};

struct ParseResult {
  std::optional<RuleSet> rules;  // set iff ok
  std::optional<ParseError> error;
  bool ok() const { return rules.has_value(); }
};

/// Parses a rule list. Never throws; an empty or comment-only text is an empty set.
ParseResult ParseRules(std::string_view text);

/// Parses one NUMBER of the rule language with its optional unit ("0.25",
/// "100ms", "2GB") into base units. nullopt if `text` is anything else
/// (including negative numbers and surrounding space). Never throws.
std::optional<double> ParseQuantity(std::string_view text);

/// True iff `name` is a METRIC of the rule language: a letter or '_', then
/// letters, digits, '_' and '.' (e.g. "response.p95").
bool IsMetricName(std::string_view name);

/// True when the set can lower the instance count, i.e. it has a lower metric
/// bound (`5 < rate`) greater than 0 or an upper `instances` bound. Sets without
/// one scale up but never back down: `rules check` warns about them.
bool CanScaleDown(const RuleSet& set);

/// Empty when CanScaleDown(set) or the set is empty; otherwise a one-line warning for operators
/// that suggests a rule to add, e.g. "... e.g. '0.25 < rate < 1'".
std::string ScaleDownWarning(const RuleSet& set);

/// The largest count the evaluator computes; bigger results saturate here.
/// 2^53, so every count up to it is exact in a double.
constexpr long kCountLimit = 1L << 53;

/// An inclusive instance-count range; nullopt max = unbounded.
struct Range {
  long min = 0;
  std::optional<long> max;
};

struct Evaluation {
  Range ideal;                 // after intersecting every rule, before the clamp
  std::optional<Range> range;  // clamped to [min_instances, max_instances]; nullopt if the rules contradict
  long target = 0;             // the instance count to move to
  /// Metrics the rules name for which no value was given (those rules were skipped).
  std::vector<std::string> missing_metrics;
};

/// Computes the ideal range, clamp and target for `instances` current
/// instances given per-instance metric averages (base units), exactly as
/// SPEC.md §5 specifies. REQUIRES: 0 <= min_instances <= max_instances
/// (violations are repaired: min raised to 0, max raised to min) and
/// instances >= 0 (a negative count is taken as 0). A metric whose value is
/// NaN counts as missing. Counts saturate at kCountLimit. Never throws.
Evaluation Evaluate(const RuleSet& set, long instances, const std::map<std::string, double>& metrics,
                    long min_instances, long max_instances);

}  // namespace reactor::rules
