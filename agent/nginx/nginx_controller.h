// What the agent asks of nginx (SPEC.md §7). Two kinds of change:
// structural (ApplySites) and membership (SetMembers). In the default
// dynamic mode both go live through lua with no reload, except a listen
// port or certificate that appears or disappears (or a changed template):
// that is rendered, tested with nginx -t, swapped atomically and reloaded,
// coalesced within reload_delay. In reload mode every change is a reload.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"

namespace reactor {

struct NginxSettings {
  enum class Mode { kManaged, kSystem };
  enum class Upstreams { kDynamic, kReload };
  Mode mode = Mode::kManaged;
  std::string prefix = "/var/lib/reactor/nginx";
  std::string binary = "/usr/sbin/nginx";
  std::string conf_dir = "/etc/nginx/conf.d";
  std::string template_dir;  // empty = the built-in templates/
  Duration reload_delay{200};
  Upstreams upstreams = Upstreams::kDynamic;
  /// System mode: the system nginx's pid file (for reloads) and main config
  /// (for `nginx -t`; empty = nginx's compiled-in default).
  std::string system_pid_file = "/run/nginx.pid";
  std::string system_conf;
  /// The managed nginx's access and error logs are rotated (renamed to
  /// NAME.1, nginx reopens them) once larger than this; 0 = never.
  int64_t log_max_bytes = int64_t{64} << 20;
};

/// One upstream server of an endpoint.
struct Member {
  std::string address;  // host:port
  int weight = 1;
  bool operator==(const Member& o) const { return address == o.address && weight == o.weight; }
};

class NginxController {
 public:
  virtual ~NginxController() = default;
  /// Starts (managed mode) or adopts the running nginx from its pid file.
  virtual Status Start() = 0;
  /// Replaces the full set of endpoints nginx serves. Dynamic mode: routes of
  /// endpoints on servers nginx has go live at once (pushed, no reload); a
  /// new or removed server (listen key, TLS files) or a template change is
  /// applied after `reload_delay` (coalescing). Reload mode: every change
  /// waits for the reload. An endpoint nginx cannot serve (invalid, in
  /// conflict with another, or refused by nginx -t) is held back and the
  /// rest applied: it keeps its previous configuration if it had one, gets an
  /// event, and shows in HeldBack(). Errors from nginx -t that no endpoint
  /// explains (a template) are logged and returned by the next Flush; the
  /// last good config keeps serving. Returns within about a second even when
  /// nginx does not answer (what could not be pushed is pushed later).
  virtual Status ApplySites(const std::vector<EndpointConfig>& endpoints) = 0;
  /// Sets the live members of one endpoint's upstream. Ok once validated:
  /// pushed at once, or, while nginx does not answer, later by Flush (and to
  /// a restarted nginx on its own; callers need not push again). The copy
  /// nginx loads when it starts is written by the next Flush (or Stop,
  /// Detach, a restart), once for however many endpoints changed.
  virtual Status SetMembers(const std::string& endpoint, const std::vector<Member>& members) = 0;
  /// Applies anything pending now; called from the agent loop every tick.
  /// Bounded: a control push waits at most a few hundred ms, and once one
  /// fails the others wait for a later Flush.
  virtual Status Flush() = 0;
  /// How long until a pending structural change is due (`reload_delay` after
  /// the first one); nullopt when none is pending. The loop wakes by then so
  /// that the change is applied without waiting for the next round.
  virtual std::optional<Duration> UntilFlushDue() const = 0;
  /// Managed mode: restarts nginx if it died (then re-pushes membership).
  virtual Status Supervise() = 0;
  /// Leaves nginx running (it keeps serving when the agent stops).
  virtual void Detach() = 0;
  /// The access log nginx writes in kLogFormat (agent/metrics/log_format.h).
  virtual std::string AccessLogPath() const = 0;
  /// Counters for tests and status.
  virtual int ReloadCount() const = 0;
  /// Endpoints held back (see ApplySites), by name, with why.
  virtual std::map<std::string, std::string> HeldBack() const { return {}; }
};

}  // namespace reactor
