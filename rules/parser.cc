// ParseRules: runs the PEGTL grammar of grammar.h with actions that build the
// RuleSet. Syntax errors come from the grammar's must/raise points; the few
// semantic errors (unknown unit, empty range, fractional instance bound) are
// raised by the actions as pegtl::parse_error at the offending token, so both
// reach the caller as one ParseError with a line and column.
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <string>
#include <system_error>

#include "rules/grammar.h"
#include "rules/rules.h"

namespace reactor::rules {
namespace {

namespace pegtl = tao::pegtl;
namespace g = grammar;

enum class Op { kLess, kLessEqual, kGreater, kGreaterEqual };

bool IsLess(Op op) { return op == Op::kLess || op == Op::kLessEqual; }
bool IsInclusive(Op op) { return op == Op::kLessEqual || op == Op::kGreaterEqual; }

struct Bound {
  double value = 0;
  pegtl::position position;
};

struct ParseState {
  // The number being read.
  double unit_factor = 1;
  bool unit_divides = false;  // `ms`: divide by 1000 rather than multiply by 0.001, for exact 0.1
  double number = 0;

  // The rule being read: [lead lead_op] metric [tail_op tail].
  std::optional<Bound> lead;
  Op lead_op = Op::kLess;
  std::string metric;
  std::optional<Bound> tail;
  Op tail_op = Op::kLess;

  RuleSet set;
};

struct UnitInfo {
  std::string_view name;
  double factor;
  bool divides;
};
constexpr UnitInfo kUnits[] = {
    {"ms", 1000, true}, {"s", 1, false},     {"k", 1e3, false},      {"M", 1e6, false},
    {"G", 1e9, false},  {"KB", 1024, false}, {"MB", 1048576, false}, {"GB", 1073741824, false},
};

template <typename Rule>
struct Action : pegtl::nothing<Rule> {};

template <>
struct Action<g::unit> {
  template <typename ActionInput>
  static void apply(const ActionInput& in, ParseState& st) {
    for (const UnitInfo& u : kUnits) {
      if (in.string_view() == u.name) {
        st.unit_factor = u.factor;
        st.unit_divides = u.divides;
        return;
      }
    }
    throw pegtl::parse_error("unknown unit '" + in.string() + "' (known: ms s k M G KB MB GB)", in);
  }
};

template <>
struct Action<g::number> {
  template <typename ActionInput>
  static void apply(const ActionInput& in, ParseState& st) {
    // The digits are everything before the unit (the unit starts with a letter or '_').
    std::string_view text = in.string_view();
    size_t end = 0;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
    if (ec != std::errc() || ptr != text.data() + end) {
      throw pegtl::parse_error("number '" + std::string(text.substr(0, end)) + "' is out of range", in);
    }
    value = st.unit_divides ? value / st.unit_factor : value * st.unit_factor;
    st.unit_factor = 1;
    st.unit_divides = false;
    if (!std::isfinite(value)) throw pegtl::parse_error("number '" + in.string() + "' is out of range", in);
    st.number = value;
  }
};

template <>
struct Action<g::rule_begin> {
  static void apply0(ParseState& st) {
    st.lead.reset();
    st.tail.reset();
    st.metric.clear();
  }
};

template <>
struct Action<g::lead_value> {
  template <typename ActionInput>
  static void apply(const ActionInput& in, ParseState& st) {
    st.lead = Bound{st.number, in.position()};
  }
};

template <typename After>
struct Action<g::tail_value<After>> {
  template <typename ActionInput>
  static void apply(const ActionInput& in, ParseState& st) {
    st.tail = Bound{st.number, in.position()};
  }
};

template <Op kOp>
struct SetLeadOp {
  static void apply0(ParseState& st) { st.lead_op = kOp; }
};
template <>
struct Action<g::lead_lt> : SetLeadOp<Op::kLess> {};
template <>
struct Action<g::lead_le> : SetLeadOp<Op::kLessEqual> {};
template <>
struct Action<g::lead_gt> : SetLeadOp<Op::kGreater> {};
template <>
struct Action<g::lead_ge> : SetLeadOp<Op::kGreaterEqual> {};

template <Op kOp>
struct SetTailOp {
  static void apply0(ParseState& st) { st.tail_op = kOp; }
};
template <>
struct Action<g::tail_lt> : SetTailOp<Op::kLess> {};
template <>
struct Action<g::tail_le> : SetTailOp<Op::kLessEqual> {};
template <>
struct Action<g::tail_gt> : SetTailOp<Op::kGreater> {};
template <>
struct Action<g::tail_ge> : SetTailOp<Op::kGreaterEqual> {};

struct SetMetric {
  template <typename ActionInput>
  static void apply(const ActionInput& in, ParseState& st) {
    st.metric = in.string();
  }
};
template <>
struct Action<g::metric> : SetMetric {};
template <typename After>
struct Action<g::lead_metric<After>> : SetMetric {};

constexpr std::string_view kInstances = "instances";

/// Turns the pieces of one rule into a Rule and checks what the grammar cannot.
template <>
struct Action<g::rule_body> {
  template <typename ActionInput>
  static void apply(const ActionInput& in, ParseState& st) {
    Rule rule;
    rule.metric = st.metric;
    rule.text = in.string();
    // `L < m < U` and `m > L` put the lead on the lower side; `U > m > L` and
    // `m < U` on the upper side.
    std::optional<Bound> lower, upper;
    if (st.lead) {
      (IsLess(st.lead_op) ? lower : upper) = st.lead;
      (IsLess(st.lead_op) ? rule.lower_inclusive : rule.upper_inclusive) = IsInclusive(st.lead_op);
    }
    if (st.tail) {
      (IsLess(st.tail_op) ? upper : lower) = st.tail;
      (IsLess(st.tail_op) ? rule.upper_inclusive : rule.lower_inclusive) = IsInclusive(st.tail_op);
    }
    if (lower) rule.lower = lower->value;
    if (upper) rule.upper = upper->value;

    if (rule.metric == kInstances) {
      for (const std::optional<Bound>& b : {lower, upper}) {
        if (b && b->value != std::floor(b->value)) {
          throw pegtl::parse_error("an 'instances' bound must be a whole number", b->position);
        }
      }
      // The count range the rule allows; must not be empty.
      double min = lower ? lower->value + (rule.lower_inclusive ? 0 : 1) : 0;
      if (upper && upper->value - (rule.upper_inclusive ? 0 : 1) < min) {
        const Bound& at = st.tail ? *st.tail : *upper;
        throw pegtl::parse_error("no instance count satisfies this rule", at.position);
      }
    } else if (lower && upper) {
      bool empty = lower->value > upper->value ||
                   (lower->value == upper->value && !(rule.lower_inclusive && rule.upper_inclusive));
      if (empty) {
        throw pegtl::parse_error("no value satisfies this rule: its lower bound is not below its upper bound",
                                 st.tail->position);
      }
    }
    st.set.rules.push_back(std::move(rule));
  }
};

std::string LineOf(std::string_view text, size_t line) {
  size_t begin = 0;
  for (size_t i = 1; i < line; ++i) {
    size_t nl = text.find('\n', begin);
    if (nl == std::string_view::npos) return "";
    begin = nl + 1;
  }
  size_t end = text.find('\n', begin);
  std::string_view out = text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
  if (!out.empty() && out.back() == '\r') out.remove_suffix(1);
  return std::string(out);
}

ParseError MakeError(std::string_view text, const pegtl::position& pos, std::string message) {
  ParseError e;
  e.line = static_cast<int>(pos.line);
  e.column = static_cast<int>(pos.column);
  e.message = std::move(message);
  e.source_line = LineOf(text, pos.line);
  return e;
}

}  // namespace

std::string ParseError::Format() const {
  std::string out =
      "rules:" + std::to_string(line) + ":" + std::to_string(column) + ": " + message + "\n  " + source_line + "\n  ";
  // Copy tabs so the caret lines up under the column however tabs render.
  for (int i = 0; i + 1 < column; ++i) {
    out += (static_cast<size_t>(i) < source_line.size() && source_line[i] == '\t') ? '\t' : ' ';
  }
  out += '^';
  return out;
}

ParseResult ParseRules(std::string_view text) {
  ParseResult result;
  ParseState st;
  pegtl::memory_input<> in(text.data(), text.size(), "rules");
  try {
    if (pegtl::parse<g::list, Action, g::control>(in, st)) {
      result.rules = std::move(st.set);
    } else {
      // Unreachable: the grammar raises wherever it can fail.
      result.error = MakeError(text, in.position(), "expected a number or metric name");
    }
  } catch (const pegtl::parse_error& e) {
    pegtl::position pos = e.positions().empty() ? in.position() : e.positions().front();
    result.error = MakeError(text, pos, std::string(e.message()));
  } catch (const std::exception& e) {  // bad_alloc: still a result, never an exception
    result.error = MakeError(text, in.position(), std::string("cannot parse the rules: ") + e.what());
  }
  return result;
}

std::optional<double> ParseQuantity(std::string_view text) {
  ParseState st;
  pegtl::memory_input<> in(text.data(), text.size(), "quantity");
  try {
    if (pegtl::parse<pegtl::seq<g::number, pegtl::eof>, Action, g::control>(in, st)) return st.number;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

bool IsMetricName(std::string_view name) {
  pegtl::memory_input<> in(name.data(), name.size(), "metric");
  try {
    return pegtl::parse<pegtl::seq<g::metric, pegtl::eof>>(in);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace reactor::rules
