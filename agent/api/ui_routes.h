// The dashboard's side of the API listener:
//
//   GET /ui/PATH             the dashboard's files from `ui_dir` (public: they
//                            hold no data; everything they show comes through
//                            the authenticated API). "/" and "/ui" redirect here.
//   GET /javascript/chart.js/FILE   Debian's libjs-chart.js (Chart.js), from
//                            `javascript_dir`/chart.js (the machine may be offline)
//   POST   /v1/session {"token": T}  → 200 {"csrf", "manager"} and the session
//                            cookie; a wrong token → 401 after a delay (429
//                            when too many wrong tokens are waiting)
//   GET    /v1/session       → {"csrf", "manager"} for the cookie's session
//   DELETE /v1/session       → logs out (clears the cookie)
//   POST   /v1/endpoints/NAME/rules/preview {"rules", "min", "max"}
//                            → what the rules would do now, with the metrics
//                            the endpoint's rules see: {"instances","metrics",
//                            "ideal","range","target","missing","warning"};
//                            a bad rule → 400 with details.line/column
//
// Sessions and the CSRF rule: session_auth.h.
#pragma once

#include <string>

#include "agent/api/session_auth.h"
#include "agent/telemetry/telemetry_source.h"

namespace httplib {
class Server;
}

namespace reactor {

struct UiSettings {
  std::string ui_dir;  // empty: DefaultUiDir()
  std::string javascript_dir = "/usr/share/javascript";
  std::string token;
  std::string manager;
  bool tls = false;                      // the listener is TLS: cookies get Secure
  TelemetrySource* telemetry = nullptr;  // null: no rules preview
};

/// /usr/share/reactor/ui when installed, else the source tree's ui/.
std::string DefaultUiDir();

/// Registers the routes above. `sessions` must outlive the server.
void RegisterUiRoutes(httplib::Server& server, UiSettings settings, SessionStore& sessions);

}  // namespace reactor
