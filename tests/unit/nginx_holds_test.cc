// What the agent reads of nginx's holds: GET /wakes and GET /holds bodies
// (nginx_holds.h).
#include "agent/nginx/nginx_holds.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

TEST(NginxHolds, ParsesWakeNotices) {
  auto w = ParseWakeNotices("17\nweb 3 1700000000123\napi 0 0\n");
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->seq, 17u);
  ASSERT_EQ(w->endpoints.size(), 2u);
  EXPECT_EQ(w->endpoints[0], (HeldRequests{"web", 3, 1700000000123}));
  EXPECT_EQ(w->endpoints[1], (HeldRequests{"api", 0, 0}));
  auto none = ParseWakeNotices("0\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->endpoints.empty());
}

TEST(NginxHolds, RefusesMalformedWakeNotices) {
  EXPECT_FALSE(ParseWakeNotices("").ok());
  EXPECT_FALSE(ParseWakeNotices("x\n").ok());
  EXPECT_FALSE(ParseWakeNotices("3\nweb 3\n").ok());
  EXPECT_FALSE(ParseWakeNotices("3\nWeb! 3 1\n").ok()) << "only valid endpoint names";
  EXPECT_FALSE(ParseWakeNotices("3\nweb -1 1\n").ok());
  EXPECT_FALSE(ParseWakeNotices("3\nweb 3 1 extra\n").ok());
}

TEST(NginxHolds, ParsesTheHoldReport) {
  auto r = ParseHoldReport(
      "le 0.05 0.1 1\n"
      "web 2 1 48 1 3 12345 10 20 18 1\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->bounds, (std::vector<double>{0.05, 0.1, 1}));
  ASSERT_EQ(r->endpoints.count("web"), 1u);
  const HoldStats& s = r->endpoints.at("web");
  EXPECT_EQ(s.held, 2);
  EXPECT_EQ(s.wakes, 1u);
  EXPECT_EQ(s.served, 48u);
  EXPECT_EQ(s.timed_out, 1u);
  EXPECT_EQ(s.rejected, 3u);
  EXPECT_DOUBLE_EQ(s.wait_seconds_sum, 12.345);
  EXPECT_EQ(s.buckets, (std::vector<uint64_t>{10, 20, 18, 1}));
  EXPECT_EQ(s.Waited(), 49u);
}

TEST(NginxHolds, RefusesMalformedHoldReports) {
  EXPECT_FALSE(ParseHoldReport("").ok());
  EXPECT_FALSE(ParseHoldReport("web 1 1 1 1 1 1 1\n").ok()) << "no bounds line";
  EXPECT_FALSE(ParseHoldReport("le 1 0.5\n").ok()) << "bounds must ascend";
  EXPECT_FALSE(ParseHoldReport("le 1\nweb 0 0 0 0 0 0 0\n").ok()) << "one bucket short";
  EXPECT_FALSE(ParseHoldReport("le 1\nweb 0 0 0 0 0 0 0 x 0\n").ok());
  EXPECT_TRUE(ParseHoldReport("le 1\n").ok()) << "no endpoint held yet";
}

}  // namespace
}  // namespace reactor
