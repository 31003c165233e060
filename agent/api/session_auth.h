// Authentication of API requests: the bearer token (every client), or a
// dashboard session. A session is made by POST /v1/session with the token
// in the body; the agent answers with an HttpOnly, SameSite=Strict cookie
// (Secure when the listener is TLS) holding a random session id, and a CSRF
// token the page must send in X-CSRF-Token with every request that is not
// GET or HEAD. The cookie alone never authorises a change, so a page of
// another site cannot make the browser act (SameSite=Strict already keeps
// the cookie off cross-site requests; the CSRF token is the second lock).
//
// Sessions live in memory (a restarted agent asks for the token again),
// expire after kIdle without a request or kMaxAge after login, and are
// capped at kMaxSessions (the oldest goes). A wrong token is answered
// after kWrongTokenDelay; at most kMaxDelayed such answers wait at once,
// further wrong tokens get 429 at once, so guessing stays slow without
// tying up the API's threads.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agent/common/clock.h"

namespace reactor {

class SessionStore {
 public:
  static constexpr Duration kIdle = Duration(8 * 3600 * 1000);
  static constexpr Duration kMaxAge = Duration(7 * 24 * 3600 * 1000);
  static constexpr size_t kMaxSessions = 256;
  static constexpr Duration kWrongTokenDelay = Duration(1000);
  static constexpr int kMaxDelayed = 2;
  static constexpr const char* kCookieName = "reactor_session";

  explicit SessionStore(Clock& clock) : clock_(clock) {}

  struct Session {
    std::string id;    // the cookie's value
    std::string csrf;  // what X-CSRF-Token must carry
  };
  /// A new session (random id and CSRF token, 32 bytes each as hex).
  /// Empty id when no randomness could be read.
  Session Create();
  /// The session with this id if it exists and has not expired; refreshes
  /// its idle time.
  std::optional<Session> Find(const std::string& id);
  void Remove(const std::string& id);

  /// Takes a slot for delaying a wrong-token answer; false = too many wait.
  bool BeginWrongTokenDelay();
  void EndWrongTokenDelay();

 private:
  struct Entry {
    std::string csrf;
    TimePoint created;
    TimePoint last_used;
  };
  Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Entry> sessions_;  // protected by mu_
  int delayed_ = 0;                        // protected by mu_
};

/// The value of cookie `name` in a Cookie header ("" when absent).
std::string CookieValue(const std::string& header, const std::string& name);

/// The Set-Cookie value for a session (or, with an empty id, one that
/// clears it). `secure` adds Secure.
std::string SessionCookie(const std::string& id, bool secure);

/// Random bytes as hex, from /dev/urandom; "" on failure.
std::string RandomHex(size_t bytes);

}  // namespace reactor

namespace reactor {

/// What a request presents, for Authorize.
struct RequestCredentials {
  std::string method;
  std::string path;
  std::string authorization;  // the Authorization header
  std::string cookie;         // the Cookie header
  std::string csrf;           // the X-CSRF-Token header
};

enum class Access {
  kAllowed,  // bearer token, or a session (with the CSRF token for a change)
  kPublic,   // needs nothing: the dashboard's files, the login itself
  kUnauthenticated,
  kMissingCsrf,  // a session without (or with a wrong) CSRF token on a change
};

/// Decides whether a request may go on. `metrics_public`: [agent]
/// metrics_without_token, which opens GET /metrics.
Access Authorize(const RequestCredentials& r, const std::string& token, SessionStore& sessions, bool metrics_public);

/// Compares without an early exit (no timing hint about the token).
bool ConstantTimeEqual(const std::string& a, const std::string& b);

}  // namespace reactor
