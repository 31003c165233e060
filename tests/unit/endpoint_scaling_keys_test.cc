// The [scaling] keys that choose how the policy picks its target
// (rules_policy.h): policy, scale_up_window, headroom, predict.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/endpoint/endpoint_parser.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

const char kBase[] = "[endpoint]\nurl = http://:8080/\n[cloud:process]\ncommand = /bin/app ${PORT}\n";

Result<EndpointConfig> Parse(const std::string& scaling) {
  return ParseEndpointIni("web", std::string(kBase) + "[scaling]\n" + scaling);
}

TEST(EndpointScalingKeys, DefaultsAreTheLeanPolicy) {
  auto c = ParseEndpointIni("web", kBase);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->scaling.policy, PolicyKind::kLean);
  EXPECT_EQ(c->scaling.scale_up_window, Duration(1000));
  EXPECT_EQ(c->scaling.headroom_percent, 22);
  EXPECT_EQ(c->scaling.predict, Duration(0));
  EXPECT_EQ(*GetEndpointKey(*c, "scaling", "policy"), "lean");
  EXPECT_EQ(*GetEndpointKey(*c, "scaling", "headroom"), "22%");
}

TEST(EndpointScalingKeys, ParsesAndRoundTrips) {
  auto c = Parse("policy = reactor\nscale_up_window = 2s\nheadroom = 25%\npredict = 3s\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->scaling.policy, PolicyKind::kReactor);
  EXPECT_EQ(c->scaling.scale_up_window, Duration(2000));
  EXPECT_EQ(c->scaling.headroom_percent, 25);
  EXPECT_EQ(c->scaling.predict, Duration(3000));
  auto again = ParseEndpointIni("web", SerializeEndpointIni(*c));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(*again == *c);
  EXPECT_EQ(Parse("headroom = 0\n")->scaling.headroom_percent, 0);
  auto set = SetEndpointKey(*c, "scaling", "policy", "lean");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->scaling.policy, PolicyKind::kLean);
}

TEST(EndpointScalingKeys, BadValuesNameSectionAndKey) {
  auto msg = [](const std::string& scaling) {
    auto r = Parse(scaling);
    return r.ok() ? std::string("<ok>") : r.status().message();
  };
  EXPECT_THAT(msg("policy = fastest\n"),
              HasSubstr("[scaling] policy: 'fastest' is not lean, reactor, midpoint or hpa"));
  EXPECT_THAT(msg("headroom = 95%\n"), HasSubstr("[scaling] headroom: '95%' is not a percentage from 0% to 90%"));
  EXPECT_THAT(msg("headroom = -5\n"), HasSubstr("[scaling] headroom:"));
  EXPECT_THAT(msg("headroom = ten\n"), HasSubstr("[scaling] headroom:"));
  EXPECT_THAT(msg("scale_up_window = 100ms\n"), HasSubstr("[scaling] scale_up_window: 100ms is out of range"));
  EXPECT_THAT(msg("predict = 11m\n"), HasSubstr("[scaling] predict: 11m is out of range"));
}

}  // namespace
}  // namespace reactor
