// The REST API (SPEC.md §10): JSON under /v1, every request authenticated
// with the bearer token (401 without it). Listens on host:port or a unix
// socket. Handlers run on httplib's worker threads and reach the agent only
// through the interfaces passed in.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/api/api_tls.h"
#include "agent/api/event_hub.h"
#include "agent/api/session_auth.h"
#include "agent/api/stream_routes.h"
#include "agent/common/status.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/instances/instance_record.h"
#include "agent/runtime/reconciler.h"
#include "agent/store/store.h"

namespace httplib {
class Server;
}

namespace reactor {

/// Extension point for routes owned by other concepts (metrics).
class ApiRoutes {
 public:
  virtual ~ApiRoutes() = default;
  virtual void Register(httplib::Server& server) = 0;
};

struct ApiContext {
  Store* store = nullptr;
  EndpointRegistry* registry = nullptr;
  EventLog* events = nullptr;
  Reconciler* reconciler = nullptr;
  std::string manager;
  std::string token;
  /// Called after every successful change, so the agent loop acts at once.
  std::function<void()> wake;
  /// Numbers for /metrics and the stream's samples; null: neither is served.
  TelemetrySource* telemetry = nullptr;
  /// [agent] metrics_without_token: GET /metrics needs no token.
  bool metrics_without_token = false;
  /// Open event streams and long polls beyond this get 503 (stream_routes.h).
  int stream_cap = 64;
  /// The dashboard's files (empty: DefaultUiDir(), ui_routes.h).
  std::string ui_dir;
  /// [agent] tls_cert_file, tls_key_file: set = the API is served over TLS
  /// (cpp-httplib's SSLServer) and session cookies get Secure.
  ApiTlsFiles tls;
  /// POST /v1/backup (`reactor backup`): takes a state backup now and
  /// returns its path; unset = backups are off.
  std::function<Result<std::string>()> backup;
};

class ApiServer {
 public:
  /// Threads of the API's pool that never serve a stream (stream_routes.h).
  static constexpr int kApiWorkers = 8;

  explicit ApiServer(ApiContext ctx);
  ~ApiServer();

  /// Binds `listen` ("host:port" or "unix:/path"; TLS on host:port only)
  /// and serves on a thread. IOError naming the address if it cannot bind;
  /// the TLS files' error (api_tls.h) if they could not be loaded.
  Status Start(const std::string& listen, ApiRoutes* extra_routes = nullptr);
  void Stop();
  /// Event streams and long polls open now.
  int OpenStreams() const { return stream_slots_.InUse(); }

 private:
  void Routes();
  ApiContext ctx_;
  SessionStore sessions_;
  EventHub hub_;
  StreamSlots stream_slots_;
  StreamContext stream_;
  // Before server_: MakeServer writes it while server_ is constructed.
  Status tls_status_;  // why the TLS server could not be set up (Start returns it)
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string unix_path_;
};

/// HTTP status for a Status code: 400, 401, 404, 409, 503 or 500.
int HttpStatusFor(const Status& st);
/// {"error": first line, "details": {"errors": [every line]}}.
std::string ErrorBody(const Status& st);

}  // namespace reactor
