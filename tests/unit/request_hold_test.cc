// The request hold of scale to zero as configured and as nginx is told:
// [scaling] idle_timeout, [loadbalancer:nginx] hold_timeout and hold_max;
// which endpoints hold (served_config.h) and the route lines (nginx_routes.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/endpoint/endpoint_parser.h"
#include "agent/endpoint/served_config.h"
#include "agent/nginx/nginx_render.h"
#include "agent/nginx/nginx_routes.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

const char kBase[] = "[endpoint]\nurl = http://:8080/\n[cloud:process]\ncommand = /bin/app ${PORT}\n";

Result<EndpointConfig> Parse(const std::string& extra) { return ParseEndpointIni("web", std::string(kBase) + extra); }

std::string Error(const std::string& extra) {
  auto r = Parse(extra);
  return r.ok() ? std::string("<ok>") : r.status().message();
}

TEST(RequestHold, DefaultsHoldThirtySecondsAndNeverIdle) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->scaling.idle_timeout, Duration(0));
  EXPECT_EQ(c->lb.hold_timeout, Duration(30000));
  EXPECT_EQ(c->lb.hold_max, 1000);
  EXPECT_EQ(*GetEndpointKey(*c, "loadbalancer:nginx", "hold_timeout"), "30s");
  EXPECT_EQ(*GetEndpointKey(*c, "loadbalancer:nginx", "hold_max"), "1000");
  EXPECT_EQ(*GetEndpointKey(*c, "scaling", "idle_timeout"), "0s");
}

TEST(RequestHold, KeysParseAndRoundTrip) {
  auto c = Parse(
      "[scaling]\nmin_instances = 0\nidle_timeout = 5m\n"
      "[loadbalancer:nginx]\nhold_timeout = 2500ms\nhold_max = 50\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->scaling.min_instances, 0);
  EXPECT_EQ(c->scaling.idle_timeout, Duration(300000));
  EXPECT_EQ(c->lb.hold_timeout, Duration(2500));
  EXPECT_EQ(c->lb.hold_max, 50);
  auto again = ParseEndpointIni("web", SerializeEndpointIni(*c));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(*again == *c);
  auto set = SetEndpointKey(*c, "loadbalancer:nginx", "hold_timeout", "0");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->lb.hold_timeout, Duration(0));
  EXPECT_FALSE(*set == *c);
}

TEST(RequestHold, BadValuesNameSectionAndKey) {
  EXPECT_THAT(Error("[scaling]\nidle_timeout = soon\n"), HasSubstr("[scaling] idle_timeout:"));
  EXPECT_THAT(Error("[scaling]\nidle_timeout = -1s\n"), HasSubstr("[scaling] idle_timeout:"));
  EXPECT_THAT(Error("[scaling]\nidle_timeout = 31d\n"), HasSubstr("[scaling] idle_timeout:"));
  EXPECT_THAT(Error("[loadbalancer:nginx]\nhold_timeout = 11m\n"),
              HasSubstr("[loadbalancer:nginx] hold_timeout: 11m is out of range"));
  EXPECT_THAT(Error("[loadbalancer:nginx]\nhold_timeout = 5s; return 200\n"),
              HasSubstr("[loadbalancer:nginx] hold_timeout:"));
  EXPECT_THAT(Error("[loadbalancer:nginx]\nhold_max = 100001\n"), HasSubstr("[loadbalancer:nginx] hold_max:"));
  EXPECT_THAT(Error("[loadbalancer:nginx]\nhold_max = -1\n"), HasSubstr("[loadbalancer:nginx] hold_max:"));
  EXPECT_THAT(Error("[loadbalancer:nginx]\nhold_max = 10 20\n"), HasSubstr("[loadbalancer:nginx] hold_max:"));
}

TEST(RequestHold, OnlyARunningEndpointThatCanLaunchHolds) {
  EndpointRecord rec;
  rec.name = "web";
  rec.config = *Parse("[scaling]\nmin_instances = 0\n");
  EXPECT_TRUE(MayHoldRequests(rec));
  EXPECT_EQ(ServedConfig(rec).lb.hold_timeout, Duration(30000));
  for (EndpointState s : {EndpointState::kPaused, EndpointState::kStopped, EndpointState::kDeleting}) {
    EndpointRecord r = rec;
    r.state = s;
    EXPECT_FALSE(MayHoldRequests(r)) << EndpointStateName(s);
    EXPECT_EQ(ServedConfig(r).lb.hold_timeout, Duration(0)) << EndpointStateName(s);
  }
  EndpointRecord invalid = rec;
  invalid.problem = "does not read";
  EXPECT_FALSE(MayHoldRequests(invalid));
  EndpointRecord no_max = rec;
  no_max.config.scaling.max_instances = 0;
  EXPECT_FALSE(MayHoldRequests(no_max));
  EndpointRecord off = rec;
  off.config.lb.hold_max = 0;
  EXPECT_FALSE(MayHoldRequests(off));
}

TEST(RequestHold, RouteLinesCarryTheHoldOnlyWhenThereIsOne) {
  EndpointConfig held = *Parse("[loadbalancer:nginx]\nhold_timeout = 2s\nhold_max = 7\n");
  EndpointConfig stat =
      *ParseEndpointIni("st", "[endpoint]\nurl = http://:8080/st/\ncloud = static\nstatic_instances = 127.0.0.1:9\n");
  EndpointConfig stopped = held;
  stopped.name = "off";
  stopped.url.path = "/off/";
  stopped.lb.hold_timeout = Duration(0);  // as ServedConfig gives a stopped endpoint
  RouteTables t = BuildRouteTables({held, stat, stopped});
  EXPECT_EQ(EncodeRouteTable("8080", t["8080"]),
            "8080\nweb / round_robin 0 - 2000 7\noff /off/ round_robin 0 -\nst /st/ round_robin 0 -\n");
}

TEST(RequestHold, RenderRefusesAHoldOutOfRange) {
  EndpointConfig e = *Parse("");
  EXPECT_TRUE(CheckNginxEndpoint(e).ok());
  e.lb.hold_timeout = Duration(600001);
  EXPECT_THAT(CheckNginxEndpoint(e).message(), HasSubstr("hold_timeout out of range"));
  e.lb.hold_timeout = Duration(1000);
  e.lb.hold_max = 100001;
  EXPECT_THAT(CheckNginxEndpoint(e).message(), HasSubstr("hold_max out of range"));
}

}  // namespace
}  // namespace reactor
