// Who may call the API: bearer token, or a dashboard session with its CSRF
// token for changes; public paths; session expiry and cookies.
#include <gtest/gtest.h>

#include "agent/api/session_auth.h"
#include "fake_clock.h"

namespace reactor {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";

RequestCredentials Req(std::string method, std::string path) {
  RequestCredentials r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

TEST(Authorize, BearerTokenAllowsEverythingAndAWrongOneNothing) {
  FakeClock clock;
  SessionStore sessions(clock);
  auto r = Req("PUT", "/v1/endpoints/web/state");
  r.authorization = "Bearer " + kToken;
  EXPECT_EQ(Authorize(r, kToken, sessions, false), Access::kAllowed);
  r.authorization = "Bearer " + kToken + "x";
  EXPECT_EQ(Authorize(r, kToken, sessions, false), Access::kUnauthenticated);
  r.authorization = "";
  EXPECT_EQ(Authorize(r, kToken, sessions, false), Access::kUnauthenticated);
}

TEST(Authorize, DashboardFilesAndLoginArePublicButNotTheApi) {
  FakeClock clock;
  SessionStore sessions(clock);
  EXPECT_EQ(Authorize(Req("GET", "/ui/app.js"), kToken, sessions, false), Access::kPublic);
  EXPECT_EQ(Authorize(Req("GET", "/"), kToken, sessions, false), Access::kPublic);
  EXPECT_EQ(Authorize(Req("GET", "/javascript/chart.js/chart.min.js"), kToken, sessions, false), Access::kPublic);
  EXPECT_EQ(Authorize(Req("POST", "/v1/session"), kToken, sessions, false), Access::kPublic);
  EXPECT_EQ(Authorize(Req("POST", "/ui/x"), kToken, sessions, false), Access::kUnauthenticated);
  EXPECT_EQ(Authorize(Req("GET", "/v1/endpoints"), kToken, sessions, false), Access::kUnauthenticated);
  EXPECT_EQ(Authorize(Req("GET", "/uix"), kToken, sessions, false), Access::kUnauthenticated);
}

TEST(Authorize, MetricsNeedTheTokenUnlessConfiguredOpen) {
  FakeClock clock;
  SessionStore sessions(clock);
  EXPECT_EQ(Authorize(Req("GET", "/metrics"), kToken, sessions, false), Access::kUnauthenticated);
  EXPECT_EQ(Authorize(Req("GET", "/metrics"), kToken, sessions, true), Access::kPublic);
  EXPECT_EQ(Authorize(Req("GET", "/v1/endpoints"), kToken, sessions, true), Access::kUnauthenticated);
}

TEST(Authorize, SessionReadsFreelyButChangesNeedTheCsrfToken) {
  FakeClock clock;
  SessionStore sessions(clock);
  SessionStore::Session s = sessions.Create();
  ASSERT_EQ(s.id.size(), 64u);
  ASSERT_EQ(s.csrf.size(), 64u);
  auto get = Req("GET", "/v1/endpoints");
  get.cookie = "other=1; reactor_session=" + s.id;
  EXPECT_EQ(Authorize(get, kToken, sessions, false), Access::kAllowed);
  auto put = Req("PUT", "/v1/endpoints/web/state");
  put.cookie = get.cookie;
  EXPECT_EQ(Authorize(put, kToken, sessions, false), Access::kMissingCsrf);
  put.csrf = s.id;  // the session id is not the CSRF token
  EXPECT_EQ(Authorize(put, kToken, sessions, false), Access::kMissingCsrf);
  put.csrf = s.csrf;
  EXPECT_EQ(Authorize(put, kToken, sessions, false), Access::kAllowed);
  put.cookie = "reactor_session=" + std::string(64, 'a');
  EXPECT_EQ(Authorize(put, kToken, sessions, false), Access::kUnauthenticated);
}

TEST(SessionStore, ExpiresIdleSessionsAndLogoutRemovesThem) {
  FakeClock clock;
  SessionStore sessions(clock);
  auto a = sessions.Create();
  auto b = sessions.Create();
  EXPECT_NE(a.id, b.id);
  clock.Advance(SessionStore::kIdle - Duration(1));
  EXPECT_TRUE(sessions.Find(a.id));  // refreshes a
  clock.Advance(Duration(2));
  EXPECT_TRUE(sessions.Find(a.id));
  EXPECT_FALSE(sessions.Find(b.id));
  sessions.Remove(a.id);
  EXPECT_FALSE(sessions.Find(a.id));
  EXPECT_FALSE(sessions.Find(""));
}

TEST(SessionStore, KeepsAtMostTheCapDroppingTheLeastRecentlyUsed) {
  FakeClock clock;
  SessionStore sessions(clock);
  auto first = sessions.Create();
  clock.Advance(Duration(1));
  auto second = sessions.Create();
  for (size_t i = 2; i < SessionStore::kMaxSessions + 1; ++i) {
    clock.Advance(Duration(1));
    sessions.Create();
  }
  EXPECT_FALSE(sessions.Find(first.id));
  EXPECT_TRUE(sessions.Find(second.id));
}

TEST(SessionStore, LimitsHowManyWrongTokenAnswersWaitAtOnce) {
  FakeClock clock;
  SessionStore sessions(clock);
  for (int i = 0; i < SessionStore::kMaxDelayed; ++i) EXPECT_TRUE(sessions.BeginWrongTokenDelay());
  EXPECT_FALSE(sessions.BeginWrongTokenDelay());
  sessions.EndWrongTokenDelay();
  EXPECT_TRUE(sessions.BeginWrongTokenDelay());
}

TEST(SessionCookie, IsHttpOnlyStrictAndSecureOnTls) {
  EXPECT_EQ(SessionCookie("abc", false), "reactor_session=abc; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_EQ(SessionCookie("abc", true), "reactor_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure");
  EXPECT_NE(SessionCookie("", false).find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(CookieValue("a=1; reactor_session=xyz; b=2", "reactor_session"), "xyz");
  EXPECT_EQ(CookieValue("xreactor_session=1", "reactor_session"), "");
  EXPECT_EQ(CookieValue("", "reactor_session"), "");
}

}  // namespace
}  // namespace reactor
