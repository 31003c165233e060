#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "agent/metrics/access_log_parser.h"
#include "agent/metrics/log_totals.h"

namespace reactor {
namespace {

// The record's views point into the line: keep every line alive.
LogRecord MustParse(const std::string& line) {
  static std::deque<std::string> lines;
  lines.push_back(line);
  LogRecord r;
  EXPECT_TRUE(ParseLogLine(lines.back(), &r)) << line;
  return r;
}

bool Parses(const std::string& line) {
  LogRecord r;
  return ParseLogLine(line, &r);
}

TEST(AccessLogParser, ParsesSingleAttempt) {
  LogRecord r = MustParse("1700000000.123|reactor_web|200|612|0.005|127.0.0.1:30001|200|0.004");
  EXPECT_DOUBLE_EQ(r.time, 1700000000.123);
  EXPECT_EQ(r.endpoint, "web");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.bytes, 612u);
  EXPECT_DOUBLE_EQ(r.request_time, 0.005);
  ASSERT_EQ(r.n_attempts, 1);
  EXPECT_EQ(r.attempts[0].addr, "127.0.0.1:30001");
  EXPECT_EQ(r.attempts[0].status, 200);
  EXPECT_DOUBLE_EQ(r.attempts[0].response_time, 0.004);
  EXPECT_EQ(r.extra_attempts, 0);
}

TEST(AccessLogParser, ParsesRetriesWithinAGroup) {
  LogRecord r = MustParse("1.000|reactor_api-2|200|10|1.002|10.0.0.1:80, 10.0.0.2:80|502, 200|1.000, 0.002");
  EXPECT_EQ(r.endpoint, "api-2");
  ASSERT_EQ(r.n_attempts, 2);
  EXPECT_EQ(r.attempts[0].addr, "10.0.0.1:80");
  EXPECT_EQ(r.attempts[0].status, 502);
  EXPECT_DOUBLE_EQ(r.attempts[0].response_time, 1.0);
  EXPECT_EQ(r.attempts[1].addr, "10.0.0.2:80");
  EXPECT_EQ(r.attempts[1].status, 200);
  EXPECT_DOUBLE_EQ(r.attempts[1].response_time, 0.002);
}

TEST(AccessLogParser, FlattensGroupsAfterInternalRedirect) {
  LogRecord r = MustParse("1.5|reactor_web|404|0|0.010|a:1, b:2 : c:3|502, 404 : 404|0.001, 0.002 : 0.003");
  ASSERT_EQ(r.n_attempts, 3);
  EXPECT_EQ(r.attempts[0].addr, "a:1");
  EXPECT_EQ(r.attempts[1].addr, "b:2");
  EXPECT_EQ(r.attempts[2].addr, "c:3");
  EXPECT_EQ(r.attempts[2].status, 404);
  EXPECT_DOUBLE_EQ(r.attempts[2].response_time, 0.003);
}

TEST(AccessLogParser, DashIsMissing) {
  // Client went away before the upstream answered.
  LogRecord r = MustParse("2|reactor_web|499|0|0.100|127.0.0.1:30001|-|-");
  ASSERT_EQ(r.n_attempts, 1);
  EXPECT_EQ(r.attempts[0].status, 0);
  EXPECT_LT(r.attempts[0].response_time, 0);
  // Missing items inside lists.
  r = MustParse("2|reactor_web|502|0|5.0|a:1, b:2|502, -|5.000, -");
  ASSERT_EQ(r.n_attempts, 2);
  EXPECT_EQ(r.attempts[0].status, 502);
  EXPECT_EQ(r.attempts[1].status, 0);
  EXPECT_LT(r.attempts[1].response_time, 0);
  // Not proxied at all.
  r = MustParse("2|reactor_web|503|190|0.000|-|-|-");
  EXPECT_EQ(r.n_attempts, 0);
}

TEST(AccessLogParser, FinalStatusGoesToTheFinalAttempt) {
  LogRecord r = MustParse("2|reactor_web|504|0|5.0|a:1, b:2|-, -|-, -");
  EXPECT_EQ(AttemptStatus(r, 0), 0);
  EXPECT_EQ(AttemptStatus(r, 1), 504);
}

TEST(AccessLogParser, NoLiveUpstreamsIsNoBackend) {
  LogRecord r = MustParse("2|reactor_web|502|0|0.000|reactor_web|502|0.000");
  EXPECT_EQ(r.n_attempts, 0);
}

TEST(AccessLogParser, KeepsTheFinalAttemptWhenThereAreTooMany) {
  std::string addrs, statuses, times;
  for (int i = 0; i < 12; ++i) {
    if (i) addrs += ", ", statuses += ", ", times += ", ";
    addrs += "h" + std::to_string(i) + ":1";
    statuses += i == 11 ? "200" : "502";
    times += "0.001";
  }
  LogRecord r = MustParse("3|reactor_web|200|1|0.1|" + addrs + "|" + statuses + "|" + times);
  EXPECT_EQ(r.n_attempts, LogRecord::kMaxAttempts);
  EXPECT_EQ(r.extra_attempts, 12 - LogRecord::kMaxAttempts);
  EXPECT_EQ(r.attempts[0].addr, "h0:1");
  EXPECT_EQ(r.attempts[LogRecord::kMaxAttempts - 1].addr, "h11:1");
  EXPECT_EQ(r.attempts[LogRecord::kMaxAttempts - 1].status, 200);
}

TEST(AccessLogParser, IgnoresTrailingCarriageReturn) { EXPECT_TRUE(Parses("1|reactor_web|200|1|0.1|a:1|200|0.1\r")); }

TEST(AccessLogParser, ForeignLinesAreRejectedAndFlagged) {
  for (const char* line :
       {"1|-|503|190|0.000|-|-|-", "1|backend|200|1|0.1|a:1|200|0.1", "1|reactor_|200|1|0.1|a:1|200|0.1",
        "1|reactor_Web|200|1|0.1|a:1|200|0.1", "1|reactor_web.example.com|200|1|0.1|a:1|200|0.1"}) {
    LogRecord r;
    bool foreign = false;
    EXPECT_FALSE(ParseLogLine(line, &r, &foreign)) << line;
    EXPECT_TRUE(foreign) << line;
  }
}

TEST(AccessLogParser, RejectsMalformedLines) {
  for (const char* line : {
           "",
           "garbage",
           "1|reactor_web|200|1|0.1|a:1|200",            // seven fields
           "1|reactor_web|200|1|0.1|a:1|200|0.1|extra",  // nine
           "x|reactor_web|200|1|0.1|a:1|200|0.1",        // msec
           "-1|reactor_web|200|1|0.1|a:1|200|0.1",
           "1.|reactor_web|200|1|0.1|a:1|200|0.1",
           "1e3|reactor_web|200|1|0.1|a:1|200|0.1",
           "1|reactor_web|20|1|0.1|a:1|200|0.1",  // status
           "1|reactor_web|2000|1|0.1|a:1|200|0.1",
           "1|reactor_web|099|1|0.1|a:1|200|0.1",
           "1|reactor_web|200|-1|0.1|a:1|200|0.1",  // bytes
           "1|reactor_web|200|99999999999999999999|0.1|a:1|200|0.1",
           "1|reactor_web|200|1|-|a:1|200|0.1",         // request_time
           "1|reactor_web|200|1|0.1|a:1, b:2|200|0.1",  // lists of different lengths
           "1|reactor_web|200|1|0.1|a:1|200, 200|0.1",
           "1|reactor_web|200|1|0.1|a:1|200|0.1, 0.2",
           "1|reactor_web|200|1|0.1|a:1|abc|0.1",
           "1|reactor_web|200|1|0.1|a:1|200|x",
           "1|reactor_web|200|1|0.1||200|0.1",
           "1|reactor_web|200|1|0.1|-|200|0.1",
           "1|reactor_web|200|1|0.1|a:1, |200, 200|0.1, 0.1",
       }) {
    LogRecord r;
    bool foreign = true;
    EXPECT_FALSE(ParseLogLine(line, &r, &foreign)) << line;
    EXPECT_FALSE(foreign) << line;
  }
}

TEST(AccessLogParser, VeryLongLinesAreHandled) {
  std::string addrs(100000, 'a');
  EXPECT_TRUE(Parses("1|reactor_web|200|1|0.1|" + addrs + "|200|0.1"));
  std::string many;
  for (int i = 0; i < 5000; ++i) many += i ? ", x:1" : "x:1";
  std::string st, tm;
  for (int i = 0; i < 5000; ++i) st += i ? ", 200" : "200", tm += i ? ", 0.1" : "0.1";
  LogRecord r;
  ASSERT_TRUE(ParseLogLine("1|reactor_web|200|1|0.1|" + many + "|" + st + "|" + tm, &r));
  EXPECT_EQ(r.n_attempts + r.extra_attempts, 5000);
  EXPECT_FALSE(Parses(std::string(1 << 20, '|')));
}

TEST(AccessLogParser, DecimalsRoundCorrectly) {
  double v = 0;
  ASSERT_TRUE(ParseLogDecimal("0.004", &v));
  EXPECT_EQ(v, 0.004);
  ASSERT_TRUE(ParseLogDecimal("1700000000.123", &v));
  EXPECT_EQ(v, 1700000000.123);
  ASSERT_TRUE(ParseLogDecimal("42", &v));
  EXPECT_EQ(v, 42);
  ASSERT_TRUE(ParseLogDecimal("000000000000000000001.5", &v));
  EXPECT_EQ(v, 1.5);
  ASSERT_TRUE(ParseLogDecimal("123456789012345.6", &v));  // 16 digits, below 2^53
  EXPECT_EQ(v, 123456789012345.6);
  EXPECT_FALSE(ParseLogDecimal("12345678901234567", &v));      // 2^53 or more
  EXPECT_FALSE(ParseLogDecimal("0.0000000000000000001", &v));  // 19 decimals
  EXPECT_FALSE(ParseLogDecimal(".5", &v));
  EXPECT_FALSE(ParseLogDecimal("1.2.3", &v));
  EXPECT_FALSE(ParseLogDecimal("+1", &v));
}

TEST(LogTotals, AttributesAttemptsBytesAndErrors) {
  LogTotals t;
  t.AddLine("1|reactor_web|200|100|1.0|a:1, b:2|502, 200|1.000, 0.002");
  t.AddLine("1|reactor_web|504|50|5.0|b:2|-|-");
  t.AddLine("1|reactor_web|503|10|0.0|-|-|-");
  t.AddLine("1|-|503|10|0.0|-|-|-");
  t.AddLine("junk");
  t.AddLine("1|reactor_api|200|7|0.1|c:3|200|0.100");
  EXPECT_EQ(t.lines(), 6u);
  EXPECT_EQ(t.unparsed(), 2u);
  EXPECT_EQ(t.ToJson(), R"({"api":{"c:3":{"bytes":7,"errors":0,"hits":1,"response_sum":0.1}},)"
                        R"("web":{"a:1":{"bytes":0,"errors":1,"hits":1,"response_sum":1.0},)"
                        R"("b:2":{"bytes":150,"errors":1,"hits":2,"response_sum":0.002}}})");
}

TEST(LogTotals, GrowsPastManyBackends) {
  LogTotals t;
  for (int i = 0; i < 5000; ++i) {
    std::string be = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":80";
    t.AddLine("1|reactor_ep" + std::to_string(i % 7) + "|200|1|0.1|" + be + "|200|0.001");
    t.AddLine("1|reactor_ep" + std::to_string(i % 7) + "|200|1|0.1|" + be + "|200|0.001");
  }
  size_t pairs = 0;
  uint64_t hits = 0;
  t.ForEach([&](std::string_view, std::string_view, const BackendTotals& b) {
    ++pairs;
    hits += b.hits;
  });
  EXPECT_EQ(pairs, 5000u);
  EXPECT_EQ(hits, 10000u);
}

}  // namespace
}  // namespace reactor
