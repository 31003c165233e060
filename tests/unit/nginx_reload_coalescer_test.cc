#include "agent/nginx/reload_coalescer.h"

#include <gtest/gtest.h>

#include "agent/nginx/nginx_members.h"
#include "fake_clock.h"

namespace reactor {
namespace {

TEST(NginxReloadCoalescer, DueOnlyAfterDelaySinceFirstChange) {
  FakeClock clock;
  ReloadCoalescer c(clock, Duration(200));
  EXPECT_FALSE(c.pending());
  EXPECT_FALSE(c.Due());
  c.MarkPending();
  EXPECT_TRUE(c.pending());
  EXPECT_FALSE(c.Due());
  for (int i = 0; i < 19; ++i) {
    clock.Advance(Duration(10));
    c.MarkPending();  // later changes do not push the deadline out
  }
  EXPECT_FALSE(c.Due());
  clock.Advance(Duration(10));
  EXPECT_TRUE(c.Due());
  c.Clear();
  EXPECT_FALSE(c.pending());
  EXPECT_FALSE(c.Due());
}

TEST(NginxReloadCoalescer, ZeroDelayIsDueAtOnce) {
  FakeClock clock;
  ReloadCoalescer c(clock, Duration(0));
  c.MarkPending();
  EXPECT_TRUE(c.Due());
}

TEST(NginxMembers, FileRoundTripsAndSkipsMalformedLines) {
  MemberLists lists;
  lists["web"] = {{"127.0.0.1:8001", 1}, {"[::1]:8002", 3}};
  lists["empty"] = {};
  std::string text = EncodeMembersFile(lists);
  EXPECT_EQ(text, "empty\nweb 127.0.0.1:8001=1 [::1]:8002=3\n");
  EXPECT_EQ(ParseMembersFile(text), lists);
  MemberLists parsed = ParseMembersFile(text + "Bad;name 1.2.3.4:1=1\nx 1.2.3.4:1=oops\ny host:1=1\n");
  EXPECT_EQ(parsed, lists);
}

}  // namespace
}  // namespace reactor
