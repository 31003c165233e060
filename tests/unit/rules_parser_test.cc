// The rule language's syntax (SPEC.md §5): every accepted form, and the exact
// line, column and message of rejected ones.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "rules/rules.h"

namespace reactor::rules {
namespace {

struct Expected {
  std::string metric;
  std::optional<double> lower;
  bool lower_inclusive;
  std::optional<double> upper;
  bool upper_inclusive;
};
constexpr std::nullopt_t kNone = std::nullopt;

RuleSet MustParse(const std::string& text) {
  ParseResult r = ParseRules(text);
  EXPECT_TRUE(r.ok()) << "rejected: " << text << "\n" << (r.error ? r.error->Format() : "");
  EXPECT_EQ(r.ok(), !r.error.has_value());
  return r.rules.value_or(RuleSet{});
}

void ExpectRules(const std::string& text, const std::vector<Expected>& want) {
  SCOPED_TRACE("rules: " + text);
  RuleSet set = MustParse(text);
  ASSERT_EQ(set.rules.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("rule " + std::to_string(i));
    const Rule& r = set.rules[i];
    EXPECT_EQ(r.metric, want[i].metric);
    EXPECT_EQ(r.lower, want[i].lower);
    EXPECT_EQ(r.upper, want[i].upper);
    if (r.lower) {
      EXPECT_EQ(r.lower_inclusive, want[i].lower_inclusive);
    }
    if (r.upper) {
      EXPECT_EQ(r.upper_inclusive, want[i].upper_inclusive);
    }
  }
}

TEST(RulesParser, AcceptsBothBoundsInEachOperatorCombination) {
  ExpectRules("0 < rate < 1", {{"rate", 0, false, 1, false}});
  ExpectRules("0 <= rate < 1", {{"rate", 0, true, 1, false}});
  ExpectRules("0 < rate <= 1", {{"rate", 0, false, 1, true}});
  ExpectRules("0.25 <= rate <= 1", {{"rate", 0.25, true, 1, true}});
  ExpectRules("5 <= rate <= 5", {{"rate", 5, true, 5, true}});
}

TEST(RulesParser, AcceptsOneSidedRules) {
  ExpectRules("rate < 10", {{"rate", kNone, false, 10, false}});
  ExpectRules("rate <= 10", {{"rate", kNone, false, 10, true}});
  ExpectRules("5 < rate", {{"rate", 5, false, kNone, false}});
  ExpectRules("5 <= rate", {{"rate", 5, true, kNone, false}});
}

TEST(RulesParser, AcceptsMirroredGreaterThanForms) {
  ExpectRules("rate > 5", {{"rate", 5, false, kNone, false}});
  ExpectRules("rate >= 5", {{"rate", 5, true, kNone, false}});
  ExpectRules("10 > rate", {{"rate", kNone, false, 10, false}});
  ExpectRules("10 >= rate", {{"rate", kNone, false, 10, true}});
  ExpectRules("20 > rate > 5", {{"rate", 5, false, 20, false}});
  ExpectRules("20 >= rate > 5", {{"rate", 5, false, 20, true}});
  ExpectRules("20 > rate >= 5", {{"rate", 5, true, 20, false}});
}

TEST(RulesParser, AcceptsAnyWhitespaceBetweenTokensOrNone) {
  ExpectRules("0<rate<1", {{"rate", 0, false, 1, false}});
  ExpectRules("0<=rate<=1", {{"rate", 0, true, 1, true}});
  ExpectRules("  \t 0 \t<   rate\t<1  ", {{"rate", 0, false, 1, false}});
  ExpectRules("rate>=5", {{"rate", 5, true, kNone, false}});
}

TEST(RulesParser, ConvertsUnitsToBaseUnits) {
  ExpectRules("response < 100ms", {{"response", kNone, false, 0.1, false}});
  ExpectRules("response < 250ms", {{"response", kNone, false, 0.25, false}});
  ExpectRules("response < 2s", {{"response", kNone, false, 2, false}});
  ExpectRules("rate < 1.5k", {{"rate", kNone, false, 1500, false}});
  ExpectRules("rate < 2M", {{"rate", kNone, false, 2e6, false}});
  ExpectRules("rate < 3G", {{"rate", kNone, false, 3e9, false}});
  ExpectRules("bytes < 1KB", {{"bytes", kNone, false, 1024, false}});
  ExpectRules("bytes < 2MB", {{"bytes", kNone, false, 2 * 1048576.0, false}});
  ExpectRules("bytes < 1.5GB", {{"bytes", kNone, false, 1.5 * 1073741824.0, false}});
  ExpectRules("10ms < response < 1s", {{"response", 0.01, false, 1, false}});
}

TEST(RulesParser, AcceptsDecimalsWithOrWithoutLeadingDigit) {
  ExpectRules(".5 < rate", {{"rate", 0.5, false, kNone, false}});
  ExpectRules("0.5 < rate", {{"rate", 0.5, false, kNone, false}});
  ExpectRules("rate < .25", {{"rate", kNone, false, 0.25, false}});
  ExpectRules("rate < 007", {{"rate", kNone, false, 7, false}});
  ExpectRules("rate < 10.000", {{"rate", kNone, false, 10, false}});
}

TEST(RulesParser, AcceptsMetricNamesWithDotsDigitsAndUnderscores) {
  ExpectRules("response.p95 < 1", {{"response.p95", kNone, false, 1, false}});
  ExpectRules("_custom.metric_2 < 1", {{"_custom.metric_2", kNone, false, 1, false}});
  ExpectRules("1 < Queue_Depth", {{"Queue_Depth", 1, false, kNone, false}});
  // Words that start like a separator are metrics.
  ExpectRules("android < 1", {{"android", kNone, false, 1, false}});
}

TEST(RulesParser, SeparatesRulesByCommaSemicolonAndOrNewline) {
  std::vector<Expected> two = {{"rate", kNone, false, 10, false}, {"response", kNone, false, 1, false}};
  ExpectRules("rate < 10, response < 1", two);
  ExpectRules("rate < 10; response < 1", two);
  ExpectRules("rate < 10 and response < 1", two);
  ExpectRules("rate < 10\nresponse < 1", two);
  ExpectRules("rate < 10\r\nresponse < 1\r\n", two);
  ExpectRules("rate<10,response<1", two);
  ExpectRules("rate < 10\n\n\n   response < 1\n", two);
  ExpectRules("rate < 10\nand response < 1", two);
  ExpectRules("rate < 10 and\nresponse < 1", two);
  ExpectRules("rate < 10,\nresponse < 1", two);
  ExpectRules("rate < 10\n, response < 1", two);
  ExpectRules("rate < 10,", {two[0]});
  ExpectRules("rate < 10;\n", {two[0]});
}

TEST(RulesParser, IgnoresComments) {
  ExpectRules("# scale on traffic\n0.25 < rate < 1  # per instance\n# end", {{"rate", 0.25, false, 1, false}});
  ExpectRules("rate < 1 # a, b and c < 5", {{"rate", kNone, false, 1, false}});
  ExpectRules("rate < 1, # next\n response < 2",
              {{"rate", kNone, false, 1, false}, {"response", kNone, false, 2, false}});
}

TEST(RulesParser, EmptyOrCommentOnlyIsAnEmptySet) {
  for (std::string text : {"", "   ", "\n\n", "# nothing\n  # here", "\t\r\n"}) {
    ParseResult r = ParseRules(text);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_TRUE(r.rules->rules.empty());
  }
}

TEST(RulesParser, KeepsDuplicateRulesInOrder) {
  ExpectRules("rate < 10, 2 < rate, rate < 5",
              {{"rate", kNone, false, 10, false}, {"rate", 2, false, kNone, false}, {"rate", kNone, false, 5, false}});
}

TEST(RulesParser, ParsesInstancesRules) {
  ExpectRules("2 <= instances <= 10", {{"instances", 2, true, 10, true}});
  ExpectRules("instances > 1", {{"instances", 1, false, kNone, false}});
  ExpectRules("3 < instances < 5", {{"instances", 3, false, 5, false}});
  ExpectRules("instances < 1k", {{"instances", kNone, false, 1000, false}});
}

TEST(RulesParser, KeepsTheRuleTextTrimmed) {
  RuleSet set = MustParse("  0.25 < rate < 1   # c\n\tresponse<=200ms ,  5 < x");
  ASSERT_EQ(set.rules.size(), 3u);
  EXPECT_EQ(set.rules[0].text, "0.25 < rate < 1");
  EXPECT_EQ(set.rules[1].text, "response<=200ms");
  EXPECT_EQ(set.rules[2].text, "5 < x");
}

struct Rejected {
  std::string text;
  int line;
  int column;
  std::string message;  // must appear in the error message
};

class RulesParserRejects : public testing::TestWithParam<Rejected> {};

TEST_P(RulesParserRejects, WithLineColumnAndMessage) {
  const Rejected& want = GetParam();
  ParseResult r = ParseRules(want.text);
  ASSERT_FALSE(r.ok()) << want.text;
  ASSERT_TRUE(r.error.has_value());
  EXPECT_FALSE(r.rules.has_value());
  EXPECT_EQ(r.error->line, want.line) << r.error->Format();
  EXPECT_EQ(r.error->column, want.column) << r.error->Format();
  EXPECT_NE(r.error->message.find(want.message), std::string::npos) << r.error->Format();
}

INSTANTIATE_TEST_SUITE_P(
    Syntax, RulesParserRejects,
    testing::Values(
        // Missing pieces.
        Rejected{"rate", 1, 5, "a rule needs at least one bound"},
        Rejected{"rate # nothing", 1, 15, "a rule needs at least one bound"},
        Rejected{"rate, 5 < x", 1, 5, "a rule needs at least one bound"},
        Rejected{"0 < rate <", 1, 11, "expected a number after '<'"},
        Rejected{"0 < rate <=", 1, 12, "expected a number after '<='"},
        Rejected{"rate >", 1, 7, "expected a number after '>'"},
        Rejected{"rate >= x", 1, 9, "expected a number after '>='"},
        Rejected{"5 <", 1, 4, "expected a metric name after '<'"},
        Rejected{"5 <= 6", 1, 6, "expected a metric name after '<='"},
        Rejected{"5 > 1x", 1, 5, "expected a metric name after '>'"},
        Rejected{"5 >= ", 1, 6, "expected a metric name after '>='"},
        Rejected{"5", 1, 2, "expected '<', '<=', '>' or '>=' after the number"},
        Rejected{"5 rate", 1, 3, "expected '<', '<=', '>' or '>=' after the number"},
        Rejected{"rate = 5", 1, 6, "expected '<', '<=', '>' or '>=' after the metric"},
        Rejected{"rate => 5", 1, 6, "expected '<', '<=', '>' or '>=' after the metric"},
        Rejected{"rate 5", 1, 6, "expected '<', '<=', '>' or '>=' after the metric"},
        Rejected{"< 5", 1, 1, "expected a number or metric name"},
        Rejected{"rate < < 5", 1, 8, "expected a number after '<'"},
        Rejected{"rate < = 5", 1, 8, "expected a number after '<'"},
        // Mixed directions.
        Rejected{"5 < rate > 3", 1, 10, "cannot mix '<' and '>'"},
        Rejected{"5 <= rate >= 3", 1, 11, "cannot mix '<' and '>'"},
        Rejected{"20 > rate < 30", 1, 11, "cannot mix '<' and '>'"},
        // Numbers.
        Rejected{"-5 < rate", 1, 1, "negative numbers are not allowed"},
        Rejected{"rate < -1", 1, 8, "negative numbers are not allowed"},
        Rejected{"rate > -0.5", 1, 8, "negative numbers are not allowed"},
        Rejected{"5. < rate", 1, 3, "expected a digit after '.'"},
        Rejected{"rate < 1.", 1, 10, "expected a digit after '.'"},
        Rejected{"rate < 1.x", 1, 10, "expected a digit after '.'"}, Rejected{"rate < 5x", 1, 9, "unknown unit 'x'"},
        Rejected{"rate < 5 x", 1, 10, "expected ',', ';', 'and' or a new line after the rule"},
        Rejected{"response < 5mss", 1, 13, "unknown unit 'mss'"}, Rejected{"bytes < 1kb", 1, 10, "unknown unit 'kb'"},
        Rejected{"bytes < 1K", 1, 10, "unknown unit 'K'"}, Rejected{"2m < response", 1, 2, "unknown unit 'm'"},
        Rejected{"5rate < 1", 1, 2, "unknown unit 'rate'"},
        Rejected{"rate < 1" + std::string(400, '0'), 1, 8, "out of range"},
        Rejected{"rate < 1" + std::string(300, '0') + "GB", 1, 8, "out of range"},
        // Metric names.
        Rejected{"5 < .rate", 1, 5, "expected a metric name after '<'"},
        Rejected{"5 < 9rate", 1, 5, "expected a metric name after '<'"},
        Rejected{"rate-x < 5", 1, 5, "expected '<', '<=', '>' or '>=' after the metric"},
        // Separators and lists.
        Rejected{"rate < 5 and", 1, 13, "expected a rule after 'and'"},
        // `and` where a rule must start reads as a metric named "and".
        Rejected{"rate < 5 and and rate < 6", 1, 18, "expected '<', '<=', '>' or '>=' after the metric"},
        Rejected{"rate < 5,, rate < 6", 1, 10, "expected a rule after ',' or ';'"},
        Rejected{"rate < 5; ;", 1, 11, "expected a rule after ',' or ';'"},
        Rejected{"rate < 5 rate < 6", 1, 10, "expected ',', ';', 'and' or a new line after the rule"},
        Rejected{"5 < rate < 6 < 7", 1, 14, "expected ',', ';', 'and' or a new line after the rule"},
        Rejected{", rate < 5", 1, 1, "expected a number or metric name"},
        Rejected{"and rate < 5", 1, 5, "expected '<', '<=', '>' or '>=' after the metric"},
        Rejected{"rate < 5\n  < 6", 2, 3, "expected a number or metric name"},
        Rejected{"rate < 5\n\n# c\nresponse < 1\n  foo", 5, 6, "a rule needs at least one bound"},
        Rejected{"rate < 5\r\nx = 1", 2, 3, "expected '<', '<=', '>' or '>=' after the metric"},
        Rejected{"0 < \nrate < 1", 1, 5, "expected a metric name after '<'"},
        Rejected{"rate < 1 && rate > 0", 1, 10, "expected ',', ';', 'and' or a new line after the rule"},
        Rejected{std::string("rate < 1\0", 9), 1, 9, "expected ',', ';', 'and' or a new line after the rule"},
        // Empty ranges.
        Rejected{"20 < rate < 5", 1, 13, "no value satisfies this rule"},
        Rejected{"5 < rate < 5", 1, 12, "no value satisfies this rule"},
        Rejected{"5 <= rate < 5", 1, 13, "no value satisfies this rule"},
        Rejected{"5 > rate > 20", 1, 12, "no value satisfies this rule"},
        Rejected{"1s < response < 500ms", 1, 17, "no value satisfies this rule"},
        // instances.
        Rejected{"instances < 2.5", 1, 13, "whole number"}, Rejected{"1.5 < instances", 1, 1, "whole number"},
        Rejected{"instances < 1ms", 1, 13, "whole number"},
        Rejected{"3 < instances < 4", 1, 17, "no instance count satisfies this rule"},
        Rejected{"5 <= instances <= 4", 1, 19, "no instance count satisfies this rule"},
        Rejected{"instances < 0", 1, 13, "no instance count satisfies this rule"}));

TEST(RulesParser, ErrorFormatShowsTheLineAndACaretUnderTheColumn) {
  ParseResult r = ParseRules("rate < 1\n0 < rate <\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->source_line, "0 < rate <");
  EXPECT_EQ(r.error->Format(),
            "rules:2:11: expected a number after '<'\n"
            "  0 < rate <\n"
            "            ^");
}

TEST(RulesParser, ErrorFormatKeepsTabsSoTheCaretLinesUp) {
  ParseResult r = ParseRules("\trate\t= 5");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->column, 7);
  EXPECT_EQ(r.error->Format(),
            "rules:1:7: expected '<', '<=', '>' or '>=' after the metric\n"
            "  \trate\t= 5\n"
            "  \t    \t^");
}

TEST(RulesParser, ErrorOnCrLfLineDropsTheCarriageReturn) {
  ParseResult r = ParseRules("rate < 1\r\nrate = 2\r\nrate < 3");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->line, 2);
  EXPECT_EQ(r.error->source_line, "rate = 2");
}

TEST(RulesParser, NeverThrowsOnArbitraryBytes) {
  std::string junk;
  for (int i = 0; i < 256; ++i) junk += static_cast<char>(i);
  EXPECT_NO_THROW(ParseRules(junk));
  EXPECT_NO_THROW(ParseRules(std::string(100000, '(')));
  EXPECT_NO_THROW(ParseRules(std::string(100000, '\n') + "x"));
}

TEST(RulesParser, ParsesLongListsIteratively) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "rate < 5 and ";
  text += "rate < 6";
  RuleSet set = MustParse(text);
  EXPECT_EQ(set.rules.size(), 20001u);
}

TEST(RulesQuantity, ParsesNumbersWithUnits) {
  EXPECT_EQ(ParseQuantity("3.3"), 3.3);
  EXPECT_EQ(ParseQuantity("0"), 0.0);
  EXPECT_EQ(ParseQuantity(".5"), 0.5);
  EXPECT_EQ(ParseQuantity("200ms"), 0.2);
  EXPECT_EQ(ParseQuantity("2KB"), 2048.0);
  EXPECT_EQ(ParseQuantity("1.5k"), 1500.0);
}

TEST(RulesQuantity, RejectsAnythingElse) {
  for (std::string text : {"", "-1", " 1", "1 ", "1x", "1.", "abc", "1e5", "+1", "0x10", "1,5", "nan", "inf"}) {
    EXPECT_FALSE(ParseQuantity(text).has_value()) << text;
  }
}

TEST(RulesMetricName, FollowsTheGrammar) {
  for (std::string ok : {"rate", "response.p95", "_x", "a1_b.c", "R"}) EXPECT_TRUE(IsMetricName(ok)) << ok;
  for (std::string bad : {"", "1rate", ".rate", "ra te", "rate=", "rate-x", "é"}) {
    EXPECT_FALSE(IsMetricName(bad)) << bad;
  }
}

}  // namespace
}  // namespace reactor::rules
