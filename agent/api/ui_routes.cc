#include "agent/api/ui_routes.h"

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agent/api/api_server.h"
#include "rules/rules.h"

namespace reactor {

namespace {

using nlohmann::json;

void ReplyError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st);
  res.set_content(ErrorBody(st), "application/json");
}

// A relative path of plain names: no "..", no empty or hidden segments.
bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p.size() > 200 || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string seg = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg.empty() || seg[0] == '.') return false;
    for (char c : seg) {
      if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

const char* ContentType(const std::string& path) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

void SecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
}

bool ServeFile(const std::string& path, httplib::Response& res) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  res.set_content(ss.str(), ContentType(path));
  res.set_header("Cache-Control", "no-cache");
  SecurityHeaders(res);
  return true;
}

}  // namespace

std::string DefaultUiDir() {
  static const char* const kInstalled = "/usr/share/reactor/ui";
  std::error_code ec;
  if (std::filesystem::is_directory(kInstalled, ec)) return kInstalled;
#ifdef REACTOR_SOURCE_DIR
  return std::string(REACTOR_SOURCE_DIR) + "/ui";
#else
  return kInstalled;
#endif
}

void RegisterUiRoutes(httplib::Server& server, UiSettings settings, SessionStore& sessions) {
  if (settings.ui_dir.empty()) settings.ui_dir = DefaultUiDir();
  auto redirect = [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/ui/"); };
  server.Get("/", redirect);
  server.Get("/ui", redirect);
  server.Get("/ui/(.*)", [settings](const httplib::Request& req, httplib::Response& res) {
    std::string rel = req.matches[1];
    if (rel.empty()) rel = "index.html";
    if (!SafeRelativePath(rel) || !ServeFile(settings.ui_dir + "/" + rel, res)) {
      ReplyError(res, Status::NotFound("no such dashboard file: /ui/" + rel));
    }
  });
  server.Get("/javascript/chart.js/([A-Za-z0-9._-]+)", [settings](const httplib::Request& req, httplib::Response& res) {
    std::string file = req.matches[1];
    if (!SafeRelativePath(file) || !ServeFile(settings.javascript_dir + "/chart.js/" + file, res)) {
      ReplyError(res, Status::NotFound("no such file: /javascript/chart.js/" + file +
                                       " (is Debian's libjs-chart.js installed?)"));
    }
  });

  server.Post("/v1/session", [settings, &sessions](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    std::string token =
        body.is_object() && body.contains("token") && body["token"].is_string() ? body["token"].get<std::string>() : "";
    while (!token.empty() && isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    while (!token.empty() && isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
    if (token.empty() || !ConstantTimeEqual(token, settings.token)) {
      if (!sessions.BeginWrongTokenDelay()) {
        res.set_header("Retry-After", "1");
        res.status = 429;
        res.set_content(json{{"error", "too many wrong tokens at once; wait a second and try again"}}.dump(),
                        "application/json");
        return;
      }
      std::this_thread::sleep_for(SessionStore::kWrongTokenDelay);
      sessions.EndWrongTokenDelay();
      return ReplyError(res, Status::Unauthenticated("wrong token: paste the whole contents of the agent's token_file "
                                                     "(default /etc/reactor/token)"));
    }
    SessionStore::Session s = sessions.Create();
    if (s.id.empty()) return ReplyError(res, Status::Internal("cannot read /dev/urandom for a session id"));
    res.set_header("Set-Cookie", SessionCookie(s.id, settings.tls));
    res.set_header("Cache-Control", "no-store");
    res.set_content(json{{"csrf", s.csrf}, {"manager", settings.manager}}.dump(), "application/json");
  });
  server.Post("/v1/endpoints/([^/]+)/rules/preview", [settings](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (!settings.telemetry) return ReplyError(res, Status::NotFound("this agent has no telemetry"));
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) return ReplyError(res, Status::InvalidArgument("request body must be a JSON object"));
    auto inputs = settings.telemetry->Inputs(name);
    if (!inputs) return ReplyError(res, Status::NotFound("no such endpoint: " + name));
    const std::string text = body.value("rules", "");
    const long min = body.value("min", 0L), max = body.value("max", 0L);
    if (min < 0 || max < min) {
      return ReplyError(
          res, Status::InvalidArgument("min (" + std::to_string(min) + ") must be 0 or more and at most max (" +
                                       std::to_string(max) + ")"));
    }
    rules::ParseResult parsed = rules::ParseRules(text);
    if (!parsed.ok()) {
      const rules::ParseError& e = *parsed.error;
      res.status = 400;
      res.set_content(json{{"error", "[scaling] rules: " + e.Format()},
                           {"details", {{"code", 400}, {"line", e.line}, {"column", e.column}, {"message", e.message}}}}
                          .dump(),
                      "application/json");
      return;
    }
    rules::Evaluation ev = rules::Evaluate(*parsed.rules, inputs->instances, inputs->averages, min, max);
    auto range = [](const rules::Range& r) { return json::array({r.min, r.max ? json(*r.max) : json(nullptr)}); };
    json metrics = json::object();
    for (const auto& [k, v] : inputs->averages) metrics[k] = v;
    res.set_content(json{{"instances", inputs->instances},
                         {"metrics", metrics},
                         {"ideal", range(ev.ideal)},
                         {"range", ev.range ? range(*ev.range) : json(nullptr)},
                         {"target", ev.target},
                         {"missing", ev.missing_metrics},
                         {"warning", rules::ScaleDownWarning(*parsed.rules)}}
                        .dump(),
                    "application/json");
  });
  server.Get("/v1/session", [settings, &sessions](const httplib::Request& req, httplib::Response& res) {
    auto s = sessions.Find(CookieValue(req.get_header_value("Cookie"), SessionStore::kCookieName));
    if (!s) return ReplyError(res, Status::Unauthenticated("no dashboard session (bearer clients need none)"));
    res.set_header("Cache-Control", "no-store");
    res.set_content(json{{"csrf", s->csrf}, {"manager", settings.manager}}.dump(), "application/json");
  });
  server.Delete("/v1/session", [settings, &sessions](const httplib::Request& req, httplib::Response& res) {
    sessions.Remove(CookieValue(req.get_header_value("Cookie"), SessionStore::kCookieName));
    res.set_header("Set-Cookie", SessionCookie("", settings.tls));
    res.set_content(json{{"logged_out", true}}.dump(), "application/json");
  });
}

}  // namespace reactor
