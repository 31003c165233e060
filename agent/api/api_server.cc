#include "agent/api/api_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "agent/cluster/cluster_view.h"
#include "agent/cluster/host_membership.h"
#include "agent/api/ui_routes.h"
#include "agent/endpoint/endpoint_parser.h"
#include "agent/scaler/scale_to_zero.h"
#include "agent/store/keys.h"

namespace reactor {

namespace {

using nlohmann::json;

// httplib's server speaks TCP only; this one also accepts a unix socket it
// binds itself (svr_sock_ is the listening socket httplib accepts on).
class UnixCapableServer : public httplib::Server {
 public:
  bool BindUnix(const std::string& path, std::string* error) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = strerror(errno);
      return false;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
      ::close(fd);
      *error = "socket path too long";
      return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // A socket left by an earlier run is replaced; anything else at the path
    // (a file, a directory, a link) is the operator's and stays.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        ::close(fd);
        *error = path + " exists and is not a socket; refusing to replace it";
        return false;
      }
      ::unlink(path.c_str());
    }
    mode_t old = ::umask(0077);  // the socket is for root and the CLI; the token still applies
    int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0 || ::listen(fd, SOMAXCONN) != 0) {
      *error = strerror(errno);
      ::close(fd);
      return false;
    }
    svr_sock_ = fd;
    return true;
  }
};

// The API's server: plain (with unix sockets) or, with TLS files, httplib's
// SSLServer on a context ConfigureApiTls set up. `tls_status` gets why the
// TLS context could not be made.
std::unique_ptr<httplib::Server> MakeServer(const ApiTlsFiles& tls, Status* tls_status) {
  if (!tls.enabled()) return std::make_unique<UnixCapableServer>();
  auto server = std::make_unique<httplib::SSLServer>([&tls, tls_status](SSL_CTX& ctx) {
    *tls_status = ConfigureApiTls(ctx, tls);
    return tls_status->ok();
  });
  if (!server->is_valid() && tls_status->ok()) *tls_status = Status::Internal("TLS: cannot create an OpenSSL context");
  return server;
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void ReplyError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st);
  res.set_content(ErrorBody(st), "application/json");
}

json RangeJson(const EndpointStatus& s) {
  if (!s.has_range) return nullptr;
  return json::array(
      {s.range_min ? json(*s.range_min) : json(nullptr), s.range_max ? json(*s.range_max) : json(nullptr)});
}

json StatusJson(const EndpointRecord& rec, const std::optional<EndpointStatus>& st) {
  json j = {{"name", rec.name},
            {"state", EndpointStateName(rec.state)},
            {"cloud", CloudKindName(rec.config.cloud)},
            {"url", rec.config.url.scheme + "://" + rec.config.url.ListenKey() + rec.config.url.path},
            {"instances", 0},
            {"healthy", 0},
            {"draining", 0},
            {"target", nullptr},
            {"range", nullptr},
            {"last_decision", ""},
            {"problem", ""},
            {"owner", ""},
            {"phase", ""}};  // scale to zero: "scaled to zero" | "waking" | ""
  if (st) {
    j["owner"] = st->owner;
    j["instances"] = st->instances;
    j["healthy"] = st->healthy;
    j["draining"] = st->draining;
    j["target"] = st->target;
    j["range"] = RangeJson(*st);
    j["last_decision"] = st->last_decision;
    j["problem"] = st->problem;
    j["phase"] = ZeroPhase(rec.config.scaling.min_instances, rec.state == EndpointState::kRunning, st->instances,
                           st->healthy, st->target);
  }
  if (!rec.problem.empty()) {
    j["state"] = "invalid";
    j["problem"] = rec.problem;
  }
  return j;
}

// Parses a JSON request body into an object, or fails with 400.
bool BodyObject(const httplib::Request& req, httplib::Response& res, json* out) {
  *out = json::parse(req.body, nullptr, false);
  if (!out->is_object()) {
    ReplyError(res, Status::InvalidArgument("request body must be a JSON object"));
    return false;
  }
  return true;
}

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case Status::Code::kOk: return 200;
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kUnauthenticated: return 401;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kConflict: return 409;
    case Status::Code::kUnavailable: return 503;
    default: return 500;
  }
}

std::string ErrorBody(const Status& st) {
  json errors = json::array();
  const std::string& msg = st.message();
  size_t start = 0;
  while (start <= msg.size()) {
    size_t nl = msg.find('\n', start);
    std::string line = msg.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty()) errors.push_back(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::string first = errors.empty() ? st.ToString() : errors[0].get<std::string>();
  if (errors.size() > 1) first = std::to_string(errors.size()) + " problems; the first: " + first;
  return json{{"error", first}, {"details", {{"errors", errors}, {"code", HttpStatusFor(st)}}}}.dump();
}

ApiServer::ApiServer(ApiContext ctx)
    : ctx_(std::move(ctx)),
      sessions_(SystemClock::Get()),
      hub_(*ctx_.store),
      stream_slots_(ctx_.stream_cap),
      server_(MakeServer(ctx_.tls, &tls_status_)) {
  stream_ = {&hub_, &stream_slots_, ctx_.events, ctx_.registry, ctx_.telemetry, &SystemClock::Get()};
  // Streams hold a thread each; they get their own share of the pool.
  const size_t threads = static_cast<size_t>(kApiWorkers + ctx_.stream_cap);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Routes() {
  httplib::Server& s = *server_;
  ApiContext& c = ctx_;
  // The bearer token, or a dashboard session (with its CSRF token for a
  // change): session_auth.h.
  s.set_pre_routing_handler([this, &c](const httplib::Request& req, httplib::Response& res) {
    RequestCredentials cred{req.method, req.path, req.get_header_value("Authorization"), req.get_header_value("Cookie"),
                            req.get_header_value("X-CSRF-Token")};
    switch (Authorize(cred, c.token, sessions_, c.metrics_without_token)) {
      case Access::kAllowed:
      case Access::kPublic: return httplib::Server::HandlerResponse::Unhandled;
      case Access::kMissingCsrf:
        res.status = 403;
        res.set_content(json{{"error", "missing or wrong X-CSRF-Token for this session (reload the dashboard)"},
                             {"details", {{"code", 403}}}}
                            .dump(),
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      case Access::kUnauthenticated: break;
    }
    res.set_header("WWW-Authenticate", "Bearer");
    ReplyError(res, Status::Unauthenticated("missing or wrong bearer token"));
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(res, Status::Internal(what));
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) ReplyError(res, Status::NotFound("no such API path: " + req.method + " " + req.path));
  });

  s.Get("/v1/health", [&c](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"status", "ok"}, {"version", REACTOR_VERSION}, {"manager", c.manager}});
  });

  s.Get("/v1/endpoints", [&c](const httplib::Request&, httplib::Response& res) {
    auto list = c.registry->List();
    if (!list.ok()) return ReplyError(res, list.status());
    json out = json::array();
    for (const auto& rec : *list) out.push_back(StatusJson(rec, c.reconciler->GetStatus(rec.name)));
    Reply(res, 200, {{"endpoints", out}});
  });

  s.Post("/v1/backup", [&c](const httplib::Request&, httplib::Response& res) {
    if (!c.backup) return ReplyError(res, Status::InvalidArgument("backups are off: set [agent] backup_dir"));
    auto path = c.backup();
    if (!path.ok()) return ReplyError(res, path.status());
    Reply(res, 200, {{"backup", *path}});
  });

  const std::string ep = "/v1/endpoints/([^/]+)";
  s.Put(ep, [&c](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    if (!IsValidEndpointName(name)) {
      return ReplyError(res,
                        Status::InvalidArgument("endpoint name '" + name + "' must match [a-z0-9][a-z0-9_-]{0,62}"));
    }
    auto created = c.registry->Put(name, req.body, "api");
    if (!created.ok()) return ReplyError(res, created.status());
    c.events->Record(name, "manage", *created ? "endpoint created" : "endpoint definition updated");
    c.wake();
    Reply(res, *created ? 201 : 200, {{"name", name}, {"created", *created}});
  });
  s.Get(ep, [&c](const httplib::Request& req, httplib::Response& res) {
    auto rec = c.registry->Get(req.matches[1]);
    if (!rec.ok()) return ReplyError(res, rec.status());
    json sections = json::object();
    for (const auto& [section, keys] : EndpointSections(rec->config)) {
      json kv = json::object();
      for (const auto& [k, v] : keys) kv[k] = v;
      sections[section] = kv;
    }
    Reply(res, 200,
          {{"name", rec->name},
           {"state", EndpointStateName(rec->state)},
           {"source", rec->source},
           {"ini", rec->ini},
           {"config", sections}});
  });
  s.Delete(ep, [&c](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    Status st = c.registry->SetState(name, EndpointState::kDeleting);
    if (!st.ok()) return ReplyError(res, st);
    c.events->Record(name, "unmanage", "endpoint unmanaged: draining its instances before removal");
    c.wake();
    Reply(res, 200, {{"name", name}, {"state", "deleting"}});
  });
  s.Put(ep + "/state", [&c](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!BodyObject(req, res, &body)) return;
    std::string name = req.matches[1];
    std::string want = StringField(body, "state");
    auto state = ParseEndpointState(want);
    if (!state.ok() || *state == EndpointState::kDeleting) {
      return ReplyError(res, Status::InvalidArgument("state must be running, paused or stopped, not '" + want + "'"));
    }
    auto before = c.registry->Get(name);
    if (!before.ok()) return ReplyError(res, before.status());
    Status st = c.registry->SetState(name, *state);
    if (!st.ok()) return ReplyError(res, st);
    if (before->state != *state) {
      c.events->Record(name, "state", std::string(EndpointStateName(before->state)) + " → " + want);
    }
    c.wake();
    Reply(res, 200, {{"name", name}, {"state", want}});
  });
  s.Put(ep + "/config", [&c](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!BodyObject(req, res, &body)) return;
    std::string name = req.matches[1];
    std::string section = StringField(body, "section"), key = StringField(body, "key");
    std::string value = StringField(body, "value");
    Status st = c.registry->Set(name, section, key, value);
    if (!st.ok()) return ReplyError(res, st);
    c.events->Record(name, "config", "[" + section + "] " + key + " = " + value);
    c.wake();
    Reply(res, 200, {{"name", name}, {"section", section}, {"key", key}, {"value", value}});
  });
  s.Get(ep + "/status", [&c](const httplib::Request& req, httplib::Response& res) {
    auto rec = c.registry->Get(req.matches[1]);
    if (!rec.ok()) return ReplyError(res, rec.status());
    Reply(res, 200, StatusJson(*rec, c.reconciler->GetStatus(rec->name)));
  });
  s.Get(ep + "/instances", [&c](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    auto rec = c.registry->Get(name);
    if (!rec.ok()) return ReplyError(res, rec.status());
    InstanceTable table(*c.store);
    auto list = table.List(name);
    if (!list.ok()) return ReplyError(res, list.status());
    json out = json::array();
    for (const auto& r : *list) {
      out.push_back({{"id", r.id},
                     {"address", r.address},
                     {"state", InstanceStateName(r.state)},
                     {"manager", r.manager},
                     {"cloud", r.cloud},
                     {"since_ms", r.state_since_ms},
                     {"reason", r.reason}});
    }
    Reply(res, 200, out);
  });
  s.Get(ep + "/log", [this, &c](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    // "_agent" is the agent-wide log (nginx reloads and errors, endpoints_dir).
    if (name != "_agent") {
      auto rec = c.registry->Get(name);
      if (!rec.ok()) return ReplyError(res, rec.status());
    } else {
      name.clear();
    }
    uint64_t after = req.has_param("after") ? std::strtoull(req.get_param_value("after").c_str(), nullptr, 10) : 0;
    int64_t wait_ms = req.has_param("wait") ? std::strtoll(req.get_param_value("wait").c_str(), nullptr, 10) : 0;
    wait_ms = std::clamp<int64_t>(wait_ms, 0, 30000);
    // A long poll holds a thread: it counts against the stream cap.
    if (wait_ms > 0 && !stream_slots_.TryAcquire()) {
      res.set_header("Retry-After", "5");
      return ReplyError(res, Status::Unavailable("too many open event streams: " + std::to_string(stream_slots_.cap()) +
                                                 " (the cap) are open; try again later"));
    }
    auto events = wait_ms > 0 ? FollowLog(stream_, name, after, Duration(wait_ms)) : c.events->Read(name, after);
    if (wait_ms > 0) stream_slots_.Release();
    if (!events.ok()) return ReplyError(res, events.status());
    json out = json::array();
    uint64_t next = after;
    for (const auto& e : *events) {
      out.push_back({{"seq", e.seq}, {"time_ms", e.time_ms}, {"kind", e.kind}, {"message", e.message}});
      next = std::max(next, e.seq);
    }
    Reply(res, 200, {{"events", out}, {"next", next}});
  });
  // Drains one instance through the normal path: it leaves the upstream at
  // once, the reconciler deletes it when it has no open connection (or
  // after drain_timeout) and launches a replacement if the target needs one.
  s.Post(ep + "/instances/([^/]+)/drain", [&c](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1], id = req.matches[2];
    auto rec = c.registry->Get(name);
    if (!rec.ok()) return ReplyError(res, rec.status());
    if (!IsValidKeySegment(id)) return ReplyError(res, Status::InvalidArgument("bad instance id '" + id + "'"));
    auto kv = c.store->Get(InstanceKey(name, id));
    if (!kv.ok()) return ReplyError(res, kv.status());
    if (!kv->has_value()) return ReplyError(res, Status::NotFound("endpoint " + name + " has no instance " + id));
    auto inst = DecodeInstance(**kv);
    if (!inst.ok()) return ReplyError(res, inst.status());
    if (inst->state == InstanceState::kDraining) return Reply(res, 200, {{"id", id}, {"state", "draining"}});
    if (inst->state != InstanceState::kActive && inst->state != InstanceState::kStarting) {
      return ReplyError(res, Status::Conflict("instance " + id + " is " + InstanceStateName(inst->state) +
                                              "; only a starting or active instance can be drained"));
    }
    if (inst->cloud == "static") {
      return ReplyError(
          res, Status::InvalidArgument("instance " + id + " is a static backend; remove it from static_instances"));
    }
    const std::string from = InstanceStateName(inst->state);
    inst->state = InstanceState::kDraining;
    inst->state_since_ms = SystemClock::Get().WallMillis();
    inst->reason = "drained by an operator (API); out of the upstream, waiting for open connections";
    // Compare-and-swap on the record: a change the loop made meanwhile wins
    // and the caller is told to look again.
    Txn txn;
    txn.compares.push_back(Compare::ModRevisionIs(InstanceKey(name, id), (*kv)->mod_revision));
    txn.success.push_back(Op::Put(InstanceKey(name, id), EncodeInstance(*inst)));
    auto r = c.store->Commit(txn);
    if (!r.ok()) return ReplyError(res, r.status());
    if (!r->succeeded) return ReplyError(res, Status::Conflict("instance " + id + " changed meanwhile; try again"));
    c.events->Record(name, "instance", id + " (" + inst->address + ") " + from + " → draining: " + inst->reason);
    c.wake();
    Reply(res, 202, {{"id", id}, {"state", "draining"}});
  });
  s.Get("/metrics", [&c](const httplib::Request&, httplib::Response& res) {
    if (!c.telemetry) return ReplyError(res, Status::NotFound("this agent exports no metrics"));
    res.set_content(c.telemetry->PrometheusText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/v1/managers", [&c](const httplib::Request&, httplib::Response& res) {
    auto list = ListManagers(*c.store, SystemClock::Get().WallMillis());
    if (!list.ok()) return ReplyError(res, list.status());
    json out = json::array();
    for (const auto& m : *list) {
      out.push_back({{"name", m.name},
                     {"address", m.address},
                     {"state", m.state},
                     {"draining", m.draining},
                     {"slots", m.slots},
                     {"slots_used", m.slots_used},
                     {"instances", m.instances},
                     {"owned", m.owned},
                     {"lease_left_ms", m.lease_left_ms < 0 ? json(nullptr) : json(m.lease_left_ms)}});
    }
    Reply(res, 200, out);
  });
  s.Post(R"(/v1/managers/([^/]+)/(cordon|uncordon|drain))", [&c](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    const std::string verb = req.matches[2];
    const bool cordon = verb != "uncordon";
    // Drain cordons too; uncordon ends a drain as well.
    Status st = verb == "drain" ? SetDrain(*c.store, name, true) : SetCordon(*c.store, name, cordon);
    if (st.ok() && verb == "uncordon") st = SetDrain(*c.store, name, false);
    if (!st.ok()) return ReplyError(res, st);
    c.events->Record("", "cluster",
                     "manager " + name +
                         (verb == "drain" ? " draining: no new placements, its instances move elsewhere one at a time"
                          : verb == "cordon" ? " cordoned: no new placements"
                                             : " uncordoned"));
    if (c.wake) c.wake();
    Reply(res, 200, {{"name", name}, {"cordoned", cordon}, {"draining", verb == "drain"}});
  });
}

Status ApiServer::Start(const std::string& listen, ApiRoutes* extra_routes) {
  REACTOR_RETURN_IF_ERROR(tls_status_);
  REACTOR_RETURN_IF_ERROR(hub_.Start());
  Routes();
  RegisterStreamRoutes(*server_, stream_);
  RegisterUiRoutes(*server_,
                   {ctx_.ui_dir, "/usr/share/javascript", ctx_.token, ctx_.manager, ctx_.tls.enabled(), ctx_.telemetry},
                   sessions_);
  if (extra_routes) extra_routes->Register(*server_);
  server_->set_payload_max_length(1 << 20);
  // An idle keep-alive connection holds a worker: browsers keep several.
  server_->set_keep_alive_timeout(2);
  httplib::Server* srv = server_.get();
  if (listen.rfind("unix:", 0) == 0) {
    auto* unix_srv = dynamic_cast<UnixCapableServer*>(srv);
    if (!unix_srv) return Status::InvalidArgument("listen = " + listen + ": TLS is served on host:port only");
    std::string path = listen.substr(5);
    std::string error;
    if (!unix_srv->BindUnix(path, &error)) return Status::IOError("listen = " + listen, error);
    unix_path_ = path;  // ours now: removed again by Stop
  } else {
    auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    int port = std::atoi(listen.c_str() + colon + 1);
    if (!srv->bind_to_port(host, port)) {
      return Status::IOError("listen = " + listen, std::string("cannot bind: ") + strerror(errno));
    }
  }
  thread_ = std::thread([srv] { srv->listen_after_bind(); });
  return Status::Ok();
}

void ApiServer::Stop() {
  hub_.Stop();  // ends every open stream, so the pool's threads can be joined
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  struct stat st {};
  if (!unix_path_.empty() && ::lstat(unix_path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    ::unlink(unix_path_.c_str());
  }
  unix_path_.clear();
}

}  // namespace reactor
