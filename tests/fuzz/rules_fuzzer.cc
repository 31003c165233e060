// libFuzzer target for the rule language: parse arbitrary text; when it parses,
// evaluate it with a few metric values and check the invariants of SPEC.md §5.
//
// Build: CXX=clang++-14 cmake -DREACTOR_FUZZ=ON ...; run:
//   rules_fuzzer -max_total_time=60 tests/fuzz/rules_corpus
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "rules/rules.h"

namespace {

using namespace reactor::rules;

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

void CheckError(std::string_view text, const ParseError& e) {
  FUZZ_CHECK(e.line >= 1);
  FUZZ_CHECK(e.column >= 1);
  FUZZ_CHECK(!e.message.empty());
  // The column points into the line or just past its end.
  FUZZ_CHECK(static_cast<size_t>(e.column) <= e.source_line.size() + 2);  // +1 past the end, +1 for a dropped '\r'
  size_t lines = 1;
  for (char c : text) lines += c == '\n';
  FUZZ_CHECK(static_cast<size_t>(e.line) <= lines);
  std::string formatted = e.Format();
  FUZZ_CHECK(formatted.find(e.message) != std::string::npos);
  FUZZ_CHECK(!formatted.empty() && formatted.back() == '^');
}

void CheckRule(const Rule& r) {
  FUZZ_CHECK(IsMetricName(r.metric));
  FUZZ_CHECK(r.lower || r.upper);
  for (const auto& b : {r.lower, r.upper}) {
    if (b) FUZZ_CHECK(std::isfinite(*b) && *b >= 0);
  }
  if (r.lower && r.upper) FUZZ_CHECK(*r.lower <= *r.upper);
  if (r.metric == "instances") {
    if (r.lower) FUZZ_CHECK(*r.lower == std::floor(*r.lower));
    if (r.upper) FUZZ_CHECK(*r.upper == std::floor(*r.upper));
  }
  // The rule's own text parses back to the same rule.
  ParseResult again = ParseRules(r.text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.rules->rules.size() == 1);
  const Rule& a = again.rules->rules[0];
  FUZZ_CHECK(a.metric == r.metric && a.lower == r.lower && a.upper == r.upper && a.text == r.text);
  if (r.lower) FUZZ_CHECK(a.lower_inclusive == r.lower_inclusive);
  if (r.upper) FUZZ_CHECK(a.upper_inclusive == r.upper_inclusive);
}

void CheckEvaluation(const RuleSet& set, long n, const std::map<std::string, double>& metrics, long min, long max) {
  Evaluation ev = Evaluate(set, n, metrics, min, max);
  FUZZ_CHECK(ev.ideal.min >= 0 && ev.ideal.min <= kCountLimit);
  if (ev.ideal.max) FUZZ_CHECK(*ev.ideal.max >= 0 && *ev.ideal.max <= kCountLimit);
  FUZZ_CHECK(ev.target >= min && ev.target <= max);
  bool inverted = ev.ideal.max && *ev.ideal.max < ev.ideal.min;
  if (ev.range) {
    FUZZ_CHECK(!inverted);
    FUZZ_CHECK(ev.range->max.has_value());
    FUZZ_CHECK(min <= ev.range->min && ev.range->min <= *ev.range->max && *ev.range->max <= max);
    FUZZ_CHECK(ev.range->min <= ev.target && ev.target <= *ev.range->max);
    if (ev.range->min <= n && n <= *ev.range->max) FUZZ_CHECK(ev.target == n);
  } else {
    FUZZ_CHECK(inverted);
    FUZZ_CHECK(ev.target == (n < min ? min : n > max ? max : n));
  }
  if (set.rules.empty()) {
    FUZZ_CHECK(ev.ideal.min == 0 && !ev.ideal.max);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseResult parsed = ParseRules(text);
  FUZZ_CHECK(parsed.ok() != parsed.error.has_value());
  if (!parsed.ok()) {
    CheckError(text, *parsed.error);
    return 0;
  }
  const RuleSet& set = *parsed.rules;
  for (const Rule& r : set.rules) CheckRule(r);
  FUZZ_CHECK(ScaleDownWarning(set).empty() == (CanScaleDown(set) || set.rules.empty()));

  // Every metric the rules name gets the same value; one named metric is left
  // out in the last round to exercise missing_metrics.
  const double kValues[] = {0, 0.1, 1, 2.5, 7, 1e6, 1e300};
  const long kCounts[] = {0, 1, 3, 10};
  const long kLimits[][2] = {{0, 0}, {0, 10}, {2, 5}, {1, 1000}};
  for (double v : kValues) {
    std::map<std::string, double> metrics;
    for (const Rule& r : set.rules) metrics[r.metric] = v;
    for (long n : kCounts) {
      for (const auto& lim : kLimits) CheckEvaluation(set, n, metrics, lim[0], lim[1]);
    }
  }
  if (!set.rules.empty()) {
    std::map<std::string, double> partial;
    for (const Rule& r : set.rules) partial[r.metric] = 3;
    partial.erase(set.rules.back().metric);
    Evaluation ev = Evaluate(set, 4, partial, 1, 20);
    if (set.rules.back().metric != "instances") FUZZ_CHECK(!ev.missing_metrics.empty());
    CheckEvaluation(set, 4, partial, 1, 20);
  }
  return 0;
}
