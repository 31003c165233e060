#include "agent/api/session_auth.h"

#include <fstream>

namespace reactor {

std::string RandomHex(size_t bytes) {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!urandom.read(raw.data(), static_cast<std::streamsize>(bytes))) return "";
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

SessionStore::Session SessionStore::Create() {
  Session s{RandomHex(32), RandomHex(32)};
  if (s.id.empty() || s.csrf.empty()) return {};
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_.Now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    bool expired = now - it->second.last_used > kIdle || now - it->second.created > kMaxAge;
    it = expired ? sessions_.erase(it) : std::next(it);
  }
  while (sessions_.size() >= kMaxSessions) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    sessions_.erase(oldest);
  }
  sessions_[s.id] = {s.csrf, now, now};
  return s;
}

std::optional<SessionStore::Session> SessionStore::Find(const std::string& id) {
  if (id.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  const TimePoint now = clock_.Now();
  if (now - it->second.last_used > kIdle || now - it->second.created > kMaxAge) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return Session{id, it->second.csrf};
}

void SessionStore::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(id);
}

bool SessionStore::BeginWrongTokenDelay() {
  std::lock_guard<std::mutex> lock(mu_);
  if (delayed_ >= kMaxDelayed) return false;
  ++delayed_;
  return true;
}

void SessionStore::EndWrongTokenDelay() {
  std::lock_guard<std::mutex> lock(mu_);
  if (delayed_ > 0) --delayed_;
}

std::string CookieValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    size_t start = header.find_first_not_of(' ', pos);
    if (start != std::string::npos && start < end) {
      std::string item = header.substr(start, end - start);
      size_t eq = item.find('=');
      if (eq != std::string::npos && item.compare(0, eq, name) == 0 && eq == name.size()) return item.substr(eq + 1);
    }
    pos = end + 1;
  }
  return "";
}

std::string SessionCookie(const std::string& id, bool secure) {
  std::string c = std::string(SessionStore::kCookieName) + "=" + id + "; Path=/; HttpOnly; SameSite=Strict";
  if (id.empty()) c += "; Max-Age=0";
  if (secure) c += "; Secure";
  return c;
}

}  // namespace reactor

namespace reactor {

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

Access Authorize(const RequestCredentials& r, const std::string& token, SessionStore& sessions, bool metrics_public) {
  const bool read_only = r.method == "GET" || r.method == "HEAD";
  if (read_only &&
      (r.path == "/" || r.path == "/ui" || r.path.rfind("/ui/", 0) == 0 || r.path.rfind("/javascript/", 0) == 0)) {
    return Access::kPublic;
  }
  if (r.method == "POST" && r.path == "/v1/session") return Access::kPublic;  // checks the token itself
  if (read_only && r.path == "/metrics" && metrics_public) return Access::kPublic;
  const std::string prefix = "Bearer ";
  if (r.authorization.rfind(prefix, 0) == 0) {
    return ConstantTimeEqual(r.authorization.substr(prefix.size()), token) ? Access::kAllowed
                                                                           : Access::kUnauthenticated;
  }
  auto session = sessions.Find(CookieValue(r.cookie, SessionStore::kCookieName));
  if (!session) return Access::kUnauthenticated;
  if (read_only) return Access::kAllowed;
  return !r.csrf.empty() && ConstantTimeEqual(r.csrf, session->csrf) ? Access::kAllowed : Access::kMissingCsrf;
}

}  // namespace reactor
