#include "agent/health/http_response_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace reactor {
namespace {

using Progress = HttpResponseParser::Progress;

Progress FeedAll(HttpResponseParser& p, const std::string& s) { return p.Feed(s.data(), s.size()); }

TEST(HttpResponseParser, CompletesOnContentLengthAndKeepsAlive) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), Progress::kComplete);
  EXPECT_EQ(p.status(), 200);
  EXPECT_TRUE(p.keep_alive());
}

TEST(HttpResponseParser, WaitsForTheWholeBodyAcrossReads) {
  HttpResponseParser p;
  const std::string r = "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n0123456789";
  for (size_t i = 0; i + 1 < r.size(); ++i) ASSERT_EQ(p.Feed(&r[i], 1), Progress::kIncomplete) << i;
  EXPECT_EQ(p.Feed(&r.back(), 1), Progress::kComplete);
  EXPECT_EQ(p.status(), 404);
}

TEST(HttpResponseParser, ReadsAChunkedBodyToItsLastChunk) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
            Progress::kIncomplete);
  EXPECT_EQ(FeedAll(p, "0\r\n\r\n"), Progress::kComplete);
  EXPECT_EQ(p.status(), 503);
  EXPECT_TRUE(p.keep_alive());
}

TEST(HttpResponseParser, ConnectionCloseIsNotKeptAlive) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), Progress::kComplete);
  EXPECT_FALSE(p.keep_alive());
  p.Reset();
  EXPECT_EQ(FeedAll(p, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), Progress::kComplete);
  EXPECT_FALSE(p.keep_alive());  // 1.0 without keep-alive
}

TEST(HttpResponseParser, BodyUntilCloseCompletesAtEof) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 200 OK\r\n\r\nsome body"), Progress::kIncomplete);
  EXPECT_EQ(p.FeedEof(), Progress::kComplete);
  EXPECT_EQ(p.status(), 200);
  EXPECT_FALSE(p.keep_alive());
}

TEST(HttpResponseParser, EofInTheMiddleIsAnError) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), Progress::kIncomplete);
  EXPECT_EQ(p.FeedEof(), Progress::kError);
  EXPECT_STRNE(p.error(), "");
}

TEST(HttpResponseParser, EofBeforeAnyByteIsNotYetAnAnswer) {
  HttpResponseParser p;
  EXPECT_FALSE(p.started());
  EXPECT_EQ(p.FeedEof(), Progress::kIncomplete);
}

TEST(HttpResponseParser, SkipsInterimContinue) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), Progress::kComplete);
  EXPECT_EQ(p.status(), 204);
  EXPECT_TRUE(p.keep_alive());
}

TEST(HttpResponseParser, NoBodyFor204And304) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 304 Not Modified\r\n\r\n"), Progress::kComplete);
  EXPECT_EQ(p.status(), 304);
}

TEST(HttpResponseParser, BytesAfterTheResponseSpoilTheConnection) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n"), Progress::kComplete);
  EXPECT_EQ(p.status(), 200);
  EXPECT_FALSE(p.keep_alive());
}

TEST(HttpResponseParser, RejectsWhatIsNotHttp) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "SSH-2.0-OpenSSH_9.2\r\n"), Progress::kError);
  p.Reset();
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 2x0 OK\r\n\r\n"), Progress::kError);
  p.Reset();
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), Progress::kError);
}

TEST(HttpResponseParser, UpgradeIsCompleteButNotKeptAlive) {
  HttpResponseParser p;
  EXPECT_EQ(FeedAll(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            Progress::kComplete);
  EXPECT_EQ(p.status(), 101);
  EXPECT_FALSE(p.keep_alive());
}

TEST(HttpResponseParser, ResetAllowsTheNextResponseOnTheSameConnection) {
  HttpResponseParser p;
  for (int code : {200, 500, 302}) {
    p.Reset();
    std::string r = "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: 0\r\n\r\n";
    ASSERT_EQ(FeedAll(p, r), Progress::kComplete);
    EXPECT_EQ(p.status(), code);
  }
}

}  // namespace
}  // namespace reactor
