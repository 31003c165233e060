#include "agent/common/units.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

TEST(Units, DurationAcceptsMsSecondsMinutesAndBareSeconds) {
  EXPECT_EQ(ParseDuration("200ms")->count(), 200);
  EXPECT_EQ(ParseDuration("1s")->count(), 1000);
  EXPECT_EQ(ParseDuration("1.5s")->count(), 1500);
  EXPECT_EQ(ParseDuration("5m")->count(), 300000);
  EXPECT_EQ(ParseDuration("30")->count(), 30000);
  EXPECT_EQ(ParseDuration(" 2s ")->count(), 2000);
}

TEST(Units, DurationRejectsGarbage) {
  for (const char* bad : {"", "s", "ms", "-1s", "1x", "1 s", "abc", "1..2s", "1e3"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(Units, DurationFormatsShortestForm) {
  EXPECT_EQ(FormatDuration(Duration(200)), "200ms");
  EXPECT_EQ(FormatDuration(Duration(1000)), "1s");
  EXPECT_EQ(FormatDuration(Duration(120000)), "2m");
  EXPECT_EQ(FormatDuration(Duration(1500)), "1500ms");
}

TEST(Units, SizeSuffixesArePowersOf1024) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("10k"), 10240u);
  EXPECT_EQ(*ParseSize("64m"), 64u * 1024 * 1024);
  EXPECT_EQ(*ParseSize("1G"), 1024u * 1024 * 1024);
  EXPECT_FALSE(ParseSize("1t").ok());
  EXPECT_FALSE(ParseSize("-1").ok());
}

TEST(Units, IntAndPortRange) {
  EXPECT_EQ(*ParseInt("42", 0, 100), 42);
  EXPECT_FALSE(ParseInt("101", 0, 100).ok());
  EXPECT_FALSE(ParseInt("4x", 0, 100).ok());
  auto r = ParsePortRange("30000-39999");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->lo, 30000);
  EXPECT_EQ(r->hi, 39999);
  EXPECT_FALSE(ParsePortRange("2-1").ok());
  EXPECT_FALSE(ParsePortRange("0-10").ok());
  EXPECT_FALSE(ParsePortRange("100").ok());
}

}  // namespace
}  // namespace reactor
