#include "agent/health/probe_session.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace reactor {
namespace {

using Action = ProbeSession::Action;
using State = ProbeSession::State;

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

Action Receive(ProbeSession& s, const std::string& bytes) { return s.Received(bytes.data(), bytes.size()); }

// Brings a session to a kept-alive connection after one successful check.
void KeepAlive(ProbeSession& s) {
  s.Begin(ProbeKind::kHttp);
  s.Connected(0);
  ASSERT_EQ(s.state(), State::kAwaitingResponse);
  Receive(s, kOk);
  ASSERT_EQ(s.state(), State::kIdle);
}

TEST(ProbeSession, FirstHttpCheckConnectsSendsAndKeepsTheConnection) {
  ProbeSession s;
  Action a = s.Begin(ProbeKind::kHttp);
  EXPECT_EQ(a.what, Action::kConnect);
  EXPECT_FALSE(a.finished);
  EXPECT_EQ(s.state(), State::kConnecting);
  a = s.Connected(0);
  EXPECT_EQ(a.what, Action::kSend);
  EXPECT_EQ(s.state(), State::kAwaitingResponse);
  a = Receive(s, kOk);
  EXPECT_TRUE(a.finished);
  EXPECT_TRUE(a.ok);
  EXPECT_EQ(a.result, "HTTP 200");
  EXPECT_EQ(a.what, Action::kNothing);
  EXPECT_EQ(s.state(), State::kIdle);
  EXPECT_FALSE(s.checking());
}

TEST(ProbeSession, NextCheckReusesTheKeptConnection) {
  ProbeSession s;
  KeepAlive(s);
  Action a = s.Begin(ProbeKind::kHttp);
  EXPECT_EQ(a.what, Action::kSend);
  a = Receive(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(a.finished);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.result, "HTTP 404");
  EXPECT_EQ(s.state(), State::kIdle);
}

TEST(ProbeSession, ServerClosingAfterTheResponseClosesAndNextCheckReconnects) {
  ProbeSession s;
  s.Begin(ProbeKind::kHttp);
  s.Connected(0);
  Action a = Receive(s, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(a.ok);
  EXPECT_EQ(a.what, Action::kClose);
  EXPECT_EQ(s.state(), State::kClosed);
  EXPECT_EQ(s.Begin(ProbeKind::kHttp).what, Action::kConnect);
}

TEST(ProbeSession, IdleCloseByTheServerIsNoFailure) {
  ProbeSession s;
  KeepAlive(s);
  Action a = s.PeerClosed(0);
  EXPECT_EQ(a.what, Action::kClose);
  EXPECT_FALSE(a.finished);
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(ProbeSession, StaleKeptConnectionRetriesOnceOnAFreshOne) {
  ProbeSession s;
  KeepAlive(s);
  s.Begin(ProbeKind::kHttp);
  Action a = s.PeerClosed(ECONNRESET);  // closed before any byte of the answer
  EXPECT_EQ(a.what, Action::kReconnect);
  EXPECT_FALSE(a.finished);
  EXPECT_EQ(s.state(), State::kConnecting);
  a = s.Connected(0);
  EXPECT_EQ(a.what, Action::kSend);
  a = s.PeerClosed(0);  // the fresh connection fails too: that is the answer
  EXPECT_TRUE(a.finished);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.result, "empty reply");
}

TEST(ProbeSession, StaleRetryThatConnectsAndAnswersSucceeds) {
  ProbeSession s;
  KeepAlive(s);
  s.Begin(ProbeKind::kHttp);
  EXPECT_EQ(s.PeerClosed(0).what, Action::kReconnect);
  s.Connected(0);
  Action a = Receive(s, kOk);
  EXPECT_TRUE(a.ok);
}

TEST(ProbeSession, StaleRetryRefusedIsConnectionRefused) {
  ProbeSession s;
  KeepAlive(s);
  s.Begin(ProbeKind::kHttp);
  s.PeerClosed(EPIPE);
  Action a = s.Connected(ECONNREFUSED);
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.result, "connection refused");
  EXPECT_EQ(a.what, Action::kClose);
}

TEST(ProbeSession, ResetOnAFreshConnectionFailsAtOnce) {
  ProbeSession s;
  s.Begin(ProbeKind::kHttp);
  s.Connected(0);
  Action a = s.PeerClosed(ECONNRESET);
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.result, "connection reset");
}

TEST(ProbeSession, CloseInTheMiddleOfTheResponseFails) {
  ProbeSession s;
  KeepAlive(s);
  s.Begin(ProbeKind::kHttp);
  Receive(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
  Action a = s.PeerClosed(0);  // bytes arrived: no retry
  EXPECT_TRUE(a.finished);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(ProbeSession, BodyFramedByCloseSucceedsAtEof) {
  ProbeSession s;
  s.Begin(ProbeKind::kHttp);
  s.Connected(0);
  EXPECT_FALSE(Receive(s, "HTTP/1.0 200 OK\r\n\r\nalive").finished);
  Action a = s.PeerClosed(0);
  EXPECT_TRUE(a.ok);
  EXPECT_EQ(a.result, "HTTP 200");
  EXPECT_EQ(a.what, Action::kClose);
}

TEST(ProbeSession, TimeoutDropsTheConnection) {
  ProbeSession s;
  KeepAlive(s);
  s.Begin(ProbeKind::kHttp);
  Action a = s.TimedOut(1000);
  EXPECT_TRUE(a.finished);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.result, "timeout after 1000ms");
  EXPECT_EQ(a.what, Action::kClose);
  EXPECT_EQ(s.state(), State::kClosed);
  // A late answer on nothing is ignored; the next check connects anew.
  EXPECT_FALSE(Receive(s, kOk).finished);
  EXPECT_EQ(s.Begin(ProbeKind::kHttp).what, Action::kConnect);
}

TEST(ProbeSession, TimeoutWhileConnecting) {
  ProbeSession s;
  s.Begin(ProbeKind::kHttp);
  Action a = s.TimedOut(250);
  EXPECT_EQ(a.result, "timeout after 250ms");
  EXPECT_EQ(a.what, Action::kClose);
}

TEST(ProbeSession, TimeoutAfterTheCheckEndedIsIgnored) {
  ProbeSession s;
  KeepAlive(s);
  Action a = s.TimedOut(1000);
  EXPECT_FALSE(a.finished);
  EXPECT_EQ(a.what, Action::kNothing);
  EXPECT_EQ(s.state(), State::kIdle);
}

TEST(ProbeSession, GarbageAnswerFailsAndCloses) {
  ProbeSession s;
  s.Begin(ProbeKind::kHttp);
  s.Connected(0);
  Action a = Receive(s, "220 smtp.example ESMTP\r\n");
  EXPECT_TRUE(a.finished);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.result.rfind("bad HTTP response: ", 0), 0u) << a.result;
  EXPECT_EQ(a.what, Action::kClose);
}

TEST(ProbeSession, UnsolicitedBytesOnAnIdleConnectionCloseIt) {
  ProbeSession s;
  KeepAlive(s);
  Action a = Receive(s, "HTTP/1.1 408 Request Timeout\r\n\r\n");
  EXPECT_EQ(a.what, Action::kClose);
  EXPECT_FALSE(a.finished);
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(ProbeSession, TcpCheckConnectsAndCloses) {
  ProbeSession s;
  EXPECT_EQ(s.Begin(ProbeKind::kTcp).what, Action::kConnect);
  Action a = s.Connected(0);
  EXPECT_TRUE(a.finished);
  EXPECT_TRUE(a.ok);
  EXPECT_EQ(a.result, "TCP connect ok");
  EXPECT_EQ(a.what, Action::kClose);
  EXPECT_EQ(s.state(), State::kClosed);
  a = (s.Begin(ProbeKind::kTcp), s.Connected(ECONNREFUSED));
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.result, "connection refused");
}

TEST(ProbeSession, TcpCheckNeverReusesAKeptHttpConnection) {
  ProbeSession s;
  KeepAlive(s);
  EXPECT_EQ(s.Begin(ProbeKind::kTcp).what, Action::kReconnect);
  EXPECT_TRUE(s.Connected(0).ok);
}

TEST(ProbeSession, HangUpWhileConnectingIsRefused) {
  ProbeSession s;
  s.Begin(ProbeKind::kTcp);
  Action a = s.PeerClosed(0);
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.result, "connection refused");
}

TEST(ProbeSession, AbandonForgetsTheConnection) {
  ProbeSession s;
  KeepAlive(s);
  s.Begin(ProbeKind::kHttp);
  s.Abandon();
  EXPECT_EQ(s.state(), State::kClosed);
  EXPECT_FALSE(s.checking());
  EXPECT_EQ(s.Begin(ProbeKind::kHttp).what, Action::kConnect);
}

}  // namespace
}  // namespace reactor
