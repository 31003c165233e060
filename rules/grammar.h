// The PEGTL grammar of the rule language (SPEC.md §5) and the error message
// for every place where the parser insists on something. Internal to the
// rules library: the parser (parser.cc) attaches actions to these rules.
//
//   list   := blank (rule ws (link)*)? blank END
//   link   := 'and' blank rule ws
//           | (',' | ';') blank (END | rule ws)
//           | NEWLINE blank (END | 'and' ... | ',' ... | rule ws)
//   rule   := VALUE ('<' | '<=') METRIC (('<' | '<=') VALUE)?
//           | VALUE ('>' | '>=') METRIC (('>' | '>=') VALUE)?
//           | METRIC OP VALUE
//   VALUE  := (DIGITS ('.' DIGITS)? | '.' DIGITS) UNIT?     (UNIT attached: 100ms, 2GB)
//   METRIC := [A-Za-z_][A-Za-z0-9_.]*
//
// Whitespace (spaces, tabs) and `#` comments may appear between tokens; a
// newline ends a rule. Trailing `,` `;` and newlines are allowed; a trailing
// `and` is not.
#pragma once

#include <tao/pegtl.hpp>

namespace reactor::rules::grammar {

namespace pegtl = tao::pegtl;

// --- Lexical pieces ---------------------------------------------------------

struct comment : pegtl::seq<pegtl::one<'#'>, pegtl::star<pegtl::not_one<'\n'>>> {};
/// Space inside a line (a comment runs to the end of the line).
struct ws : pegtl::star<pegtl::sor<pegtl::one<' ', '\t', '\r', '\f', '\v'>, comment>> {};
struct newline : pegtl::one<'\n'> {};
/// Space across lines.
struct blank : pegtl::star<pegtl::sor<pegtl::one<' ', '\t', '\r', '\f', '\v', '\n'>, comment>> {};

struct digits : pegtl::plus<pegtl::digit> {};
struct fraction_digits : digits {};  // must follow '.'
struct number_body : pegtl::sor<pegtl::seq<digits, pegtl::opt<pegtl::one<'.'>, pegtl::must<fraction_digits>>>,
                                pegtl::seq<pegtl::one<'.'>, pegtl::must<fraction_digits>>> {};
/// A unit is a word glued to the digits; the action rejects unknown ones.
struct unit
    : pegtl::seq<pegtl::sor<pegtl::alpha, pegtl::one<'_'>>, pegtl::star<pegtl::sor<pegtl::alnum, pegtl::one<'_'>>>> {};
struct number : pegtl::seq<number_body, pegtl::opt<unit>> {};

struct negative_number {};  // raised on '-' where a number is expected
/// A number where one is expected: a '-' gets a clearer message than "expected a number".
template <typename Tag>
struct value_of : pegtl::sor<number, pegtl::seq<pegtl::at<pegtl::one<'-'>>, pegtl::raise<negative_number>>> {};

struct metric : pegtl::seq<pegtl::sor<pegtl::alpha, pegtl::one<'_'>>,
                           pegtl::star<pegtl::sor<pegtl::alnum, pegtl::one<'_', '.'>>>> {};

// Operators. Each is its own type so the actions know what was written.
struct op_le : pegtl::string<'<', '='> {};
struct op_lt : pegtl::one<'<'> {};
struct op_ge : pegtl::string<'>', '='> {};
struct op_gt : pegtl::one<'>'> {};
struct less_op : pegtl::sor<op_le, op_lt> {};
struct greater_op : pegtl::sor<op_ge, op_gt> {};

// --- Rules ------------------------------------------------------------------

struct rule_begin : pegtl::success {};  // zero-width: resets the rule state

// Which operator a missing operand follows, for the error message.
struct after_lt {};
struct after_le {};
struct after_gt {};
struct after_ge {};

/// The value that starts a rule (`5` in `5 < rate`).
struct lead_value : value_of<void> {};
/// The value after the metric (`10` in `rate < 10`, `5 < rate < 10`).
template <typename After>
struct tail_value : value_of<After> {};
template <typename After>
struct lead_metric : metric {};  // the metric after a leading `VALUE OP`

struct mixed_directions {};    // `5 < rate > 3`
struct op_after_number {};     // `5 rate`
struct op_after_metric {};     // `rate = 5`
struct rule_without_bound {};  // `rate`

struct tail_lt : pegtl::seq<op_lt, ws, pegtl::must<tail_value<after_lt>>> {};
struct tail_le : pegtl::seq<op_le, ws, pegtl::must<tail_value<after_le>>> {};
struct tail_gt : pegtl::seq<op_gt, ws, pegtl::must<tail_value<after_gt>>> {};
struct tail_ge : pegtl::seq<op_ge, ws, pegtl::must<tail_value<after_ge>>> {};
struct tail_less : pegtl::sor<tail_le, tail_lt> {};
struct tail_greater : pegtl::sor<tail_ge, tail_gt> {};

// `VALUE < METRIC [< VALUE]`: the tail must keep the direction.
struct lead_lt : op_lt {};
struct lead_le : op_le {};
struct lead_gt : op_gt {};
struct lead_ge : op_ge {};
template <typename Tail, typename Opposite>
struct optional_tail : pegtl::sor<pegtl::seq<ws, Tail>,
                                  pegtl::seq<ws, pegtl::at<Opposite>, pegtl::raise<mixed_directions>>, pegtl::success> {
};
template <typename LeadOp, typename After, typename Tail, typename Opposite>
struct lead_form : pegtl::seq<LeadOp, ws, pegtl::must<lead_metric<After>>, optional_tail<Tail, Opposite>> {};
struct less_form : pegtl::sor<lead_form<lead_le, after_le, tail_less, greater_op>,
                              lead_form<lead_lt, after_lt, tail_less, greater_op>> {};
struct greater_form : pegtl::sor<lead_form<lead_ge, after_ge, tail_greater, less_op>,
                                 lead_form<lead_gt, after_gt, tail_greater, less_op>> {};
struct number_rule : pegtl::seq<lead_value, ws, pegtl::sor<less_form, greater_form, pegtl::raise<op_after_number>>> {};

/// What may follow a complete rule on its line.
struct rule_end : pegtl::sor<pegtl::eof, pegtl::one<'\n', ',', ';', '#'>, pegtl::keyword<'a', 'n', 'd'>> {};
struct metric_rule
    : pegtl::seq<metric, ws,
                 pegtl::sor<tail_less, tail_greater, pegtl::seq<pegtl::at<rule_end>, pegtl::raise<rule_without_bound>>,
                            pegtl::raise<op_after_metric>>> {};

/// A whole rule; `number_rule` also raises on a leading '-'.
struct rule_body : pegtl::sor<number_rule, metric_rule> {};
struct rule : pegtl::seq<rule_begin, rule_body> {};

// --- The list ---------------------------------------------------------------

// A rule where one is required, named by what came before it.
struct rule_after_and : rule {};
struct rule_after_delimiter : rule {};
struct rule_after_newline : rule {};
struct first_rule : rule {};

struct and_word : pegtl::keyword<'a', 'n', 'd'> {};
struct delimiter : pegtl::one<',', ';'> {};

struct and_link : pegtl::seq<and_word, blank, pegtl::must<rule_after_and>, ws> {};
struct delimiter_link
    : pegtl::seq<delimiter, blank, pegtl::sor<pegtl::eof, pegtl::seq<pegtl::must<rule_after_delimiter>, ws>>> {};
struct newline_link
    : pegtl::seq<newline, blank,
                 pegtl::sor<pegtl::eof, and_link, delimiter_link, pegtl::seq<pegtl::must<rule_after_newline>, ws>>> {};
struct link : pegtl::sor<and_link, delimiter_link, newline_link> {};

struct end_of_rules : pegtl::eof {};
struct list : pegtl::seq<blank, pegtl::sor<pegtl::eof, pegtl::seq<pegtl::must<first_rule>, ws, pegtl::star<link>, blank,
                                                                  pegtl::must<end_of_rules>>>> {};

// --- Error messages -----------------------------------------------------------

template <typename>
inline constexpr const char* error_message = nullptr;

template <>
inline constexpr auto error_message<fraction_digits> = "expected a digit after '.'";
template <>
inline constexpr auto error_message<negative_number> = "negative numbers are not allowed";
template <>
inline constexpr auto error_message<tail_value<after_lt>> = "expected a number after '<'";
template <>
inline constexpr auto error_message<tail_value<after_le>> = "expected a number after '<='";
template <>
inline constexpr auto error_message<tail_value<after_gt>> = "expected a number after '>'";
template <>
inline constexpr auto error_message<tail_value<after_ge>> = "expected a number after '>='";
template <>
inline constexpr auto error_message<lead_metric<after_lt>> = "expected a metric name after '<'";
template <>
inline constexpr auto error_message<lead_metric<after_le>> = "expected a metric name after '<='";
template <>
inline constexpr auto error_message<lead_metric<after_gt>> = "expected a metric name after '>'";
template <>
inline constexpr auto error_message<lead_metric<after_ge>> = "expected a metric name after '>='";
template <>
inline constexpr auto error_message<mixed_directions> =
    "a rule cannot mix '<' and '>': write both bounds in one direction, e.g. '5 < rate < 20'";
template <>
inline constexpr auto error_message<op_after_number> = "expected '<', '<=', '>' or '>=' after the number";
template <>
inline constexpr auto error_message<op_after_metric> = "expected '<', '<=', '>' or '>=' after the metric";
template <>
inline constexpr auto error_message<rule_without_bound> = "a rule needs at least one bound, e.g. 'rate < 10'";
template <>
inline constexpr auto error_message<first_rule> = "expected a number or metric name";
template <>
inline constexpr auto error_message<rule_after_newline> = "expected a number or metric name";
template <>
inline constexpr auto error_message<rule_after_and> = "expected a rule after 'and'";
template <>
inline constexpr auto error_message<rule_after_delimiter> = "expected a rule after ',' or ';'";
template <>
inline constexpr auto error_message<end_of_rules> = "expected ',', ';', 'and' or a new line after the rule";

struct errors {
  template <typename Rule>
  static constexpr const char* message = error_message<Rule>;
};

template <typename Rule>
using control = pegtl::must_if<errors>::control<Rule>;

}  // namespace reactor::rules::grammar
