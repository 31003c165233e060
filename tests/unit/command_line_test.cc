#include "agent/cloud/command_line.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

std::vector<std::string> Split(const std::string& cmd) {
  auto r = SplitCommandLine(cmd);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::string>{};
}

using Words = std::vector<std::string>;

TEST(CommandLine, SplitsOnBlanks) {
  EXPECT_EQ(Split("/usr/bin/python3 -m http.server 8000"), (Words{"/usr/bin/python3", "-m", "http.server", "8000"}));
  EXPECT_EQ(Split("  a \t b\n c  "), (Words{"a", "b", "c"}));
}

TEST(CommandLine, SingleQuotesAreLiteral) {
  EXPECT_EQ(Split("sh -c 'echo $NAME > out; exec \"x\" \\n'"), (Words{"sh", "-c", "echo $NAME > out; exec \"x\" \\n"}));
}

TEST(CommandLine, DoubleQuotesKeepBlanksAndHonourFewEscapes) {
  EXPECT_EQ(Split(R"(echo "a b" "q\"uote" "back\\slash" "\$x" "\n")"),
            (Words{"echo", "a b", "q\"uote", "back\\slash", "$x", "\\n"}));
}

TEST(CommandLine, BackslashEscapesOutsideQuotes) {
  EXPECT_EQ(Split(R"(a\ b c\'d \"e)"), (Words{"a b", "c'd", "\"e"}));
  EXPECT_EQ(Split("a\\\nb"), (Words{"ab"}));
}

TEST(CommandLine, QuotesJoinAdjacentText) { EXPECT_EQ(Split(R"(--opt='x y'"z"w)"), (Words{"--opt=x yzw"})); }

TEST(CommandLine, EmptyQuotesMakeAnEmptyWord) { EXPECT_EQ(Split("prog '' \"\" x"), (Words{"prog", "", "", "x"})); }

TEST(CommandLine, RejectsUnbalancedQuotesWithColumn) {
  auto r = SplitCommandLine("echo 'abc");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("column 6"), std::string::npos) << r.status().message();

  r = SplitCommandLine("echo \"abc");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());

  r = SplitCommandLine(R"(echo "a\")");
  EXPECT_FALSE(r.ok());
}

TEST(CommandLine, RejectsTrailingBackslashAndEmptyCommand) {
  EXPECT_TRUE(SplitCommandLine("echo \\").status().IsInvalidArgument());
  EXPECT_TRUE(SplitCommandLine("").status().IsInvalidArgument());
  EXPECT_TRUE(SplitCommandLine("   \t").status().IsInvalidArgument());
}

TEST(CommandLine, ExpandsKnownVariables) {
  const std::map<std::string, std::string> vars = {{"PORT", "30001"}, {"NAME", "web-1"}, {"ENDPOINT", "web"}};
  EXPECT_EQ(ExpandVariables("--port=${PORT} ${NAME}/${ENDPOINT}", vars), "--port=30001 web-1/web");
  EXPECT_EQ(ExpandVariables("${PORT}${PORT}", vars), "3000130001");
}

TEST(CommandLine, LeavesUnknownAndBareVariablesAlone) {
  const std::map<std::string, std::string> vars = {{"PORT", "1"}};
  EXPECT_EQ(ExpandVariables("$PORT ${HOME} ${ ${PORT", vars), "$PORT ${HOME} ${ ${PORT");
  EXPECT_EQ(ExpandVariables("$${PORT}", vars), "$1");
}

TEST(CommandLine, DoesNotRescanExpandedValues) {
  const std::map<std::string, std::string> vars = {{"A", "${B}"}, {"B", "x"}};
  EXPECT_EQ(ExpandVariables("${A}", vars), "${B}");
}

TEST(CommandLine, BuildArgvExpandsAfterSplitting) {
  const std::map<std::string, std::string> vars = {{"PORT", "30001"}, {"NAME", "a b"}};
  auto r = BuildArgv("app --port ${PORT} --name ${NAME} '${PORT}'", vars);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (Words{"app", "--port", "30001", "--name", "a b", "30001"}));
  EXPECT_TRUE(BuildArgv("app '${PORT}", vars).status().IsInvalidArgument());
}

}  // namespace
}  // namespace reactor
