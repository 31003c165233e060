// The NginxController for the nginx on this host (SPEC.md §7).
//
// Layout under `prefix` (both modes keep their state there):
//   conf -> conf.<N>     managed: the live tree (nginx.conf + sites.conf), a
//                        symlink swapped atomically by rename(2)
//   conf.<N>/            the live generation
//   conf.new/            a candidate being tested (removed after); system
//                        mode: reactor.conf and copies of conf_dir's other
//                        files, included by a candidate main config next to
//                        the system's (`nginx -t -c` on it), so nothing
//                        untested is ever in conf_dir
//   conf.last-good/      the tree that was live before the current one
//   logs/nginx.pid, logs/error.log, logs/access.log, logs/nginx.stderr
//                        (access and error logs rotated to *.1 by size)
//   temp/                client_body, proxy, ... temp paths
//   control/control.sock the control server (dynamic upstreams; dir is 0700)
//   members.state        persisted member lists, loaded by nginx at start
//   routes.state         persisted route tables, loaded by nginx at start
//                        (both written by Flush, Stop, Detach and before a
//                        start or reload)
// System mode writes conf_dir/reactor.conf (renamed into place once tested)
// and keeps the previous one in conf.last-good/reactor.conf.
//
// Thread-safe: every public method takes the one mutex. Calls into the
// running nginx (control pushes) time out after kControlTimeout; once one
// fails, further pushes wait until a Flush at least a second later finds
// nginx answering again, so no call holds the mutex for long.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/common/event_sink.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/nginx/nginx_members.h"
#include "agent/nginx/nginx_render.h"
#include "agent/nginx/nginx_routes.h"
#include "agent/nginx/reload_coalescer.h"

namespace reactor {

class LocalNginxController : public NginxController {
 public:
  /// `events` and `clock` must outlive the controller.
  LocalNginxController(NginxSettings settings, EventSink& events, Clock& clock);
  /// Leaves nginx running, as Detach() does (writing pending member lists).
  ~LocalNginxController() override;

  Status Start() override;
  Status ApplySites(const std::vector<EndpointConfig>& endpoints) override;
  Status SetMembers(const std::string& endpoint, const std::vector<Member>& members) override;
  Status Flush() override;
  std::optional<Duration> UntilFlushDue() const override;
  Status Supervise() override;
  void Detach() override;
  std::string AccessLogPath() const override;
  int ReloadCount() const override;
  std::map<std::string, std::string> HeldBack() const override;

  /// Managed mode (a no-op in system mode): stops nginx (graceful SIGQUIT, SIGKILL to its process
  /// group after `timeout`) and waits for it. For tests and uninstall.
  Status Stop(Duration timeout = Duration(10000));
  /// The nginx master's pid, 0 when not running.
  pid_t MasterPid() const;
  /// Route tables and member lists pushed to nginx so far (for tests).
  int PushCount() const;

 private:
  // The last rendering and what it was rendered from: a round that changes
  // nothing renders nothing (1,000 endpoints take a noticeable time in mstch).
  struct Rendering {
    NginxTemplates templates;
    std::vector<EndpointConfig> endpoints;  // reload mode
    std::set<std::string> servers;          // dynamic mode: ServerKey of each endpoint
    MemberLists members;                    // reload mode
    std::map<std::string, std::string> files;
    Duration took{0};
  };

  // Everything below is protected by mu_.
  bool Dynamic() const { return settings_.upstreams == NginxSettings::Upstreams::kDynamic; }
  Result<std::map<std::string, std::string>> RenderLocked();
  Result<std::map<std::string, std::string>> RenderEndpointsLocked(const NginxTemplates& templates,
                                                                   const std::vector<EndpointConfig>& endpoints);
  /// Admission of wanted_ into endpoints_ (held back: events), the routes.
  void AdmitLocked();
  Status ApplyLocked();
  Status NoteChangeLocked();
  /// Writes `files` as the candidate and runs nginx -t on it; adds the time
  /// it took to `*test_time`.
  Status TestCandidateLocked(const std::map<std::string, std::string>& files, Duration* test_time);
  /// REQUIRES: TestCandidateLocked(files) just passed. Puts it live.
  Status InstallCandidateLocked(const std::map<std::string, std::string>& files);
  /// After nginx -t refused the rendering of endpoints_: finds the endpoints
  /// that make it fail (bisection over the changed ones) and refuses them.
  /// True iff it found any.
  bool IsolateRefusedLocked(const NginxTemplates& templates, const Status& failure, Duration* test_time);
  /// `timings` goes into the reload event ("render N ms, ...").
  Status ReloadLocked(const std::string& timings);
  Status SpawnLocked();
  /// Marks every route table and member list as not pushed (a new or
  /// adopted nginx) and pushes what it can.
  void RepushAllLocked();
  /// Pushes route tables and member lists nginx does not have yet; stops at
  /// the first failure (then nginx is "not answering" for a second).
  void SyncPushesLocked();
  /// The route part of SyncPushesLocked; false iff nginx did not answer.
  bool SyncRoutesLocked();
  /// One control call, unless nginx was found not answering less than a
  /// second ago. Records the transitions as events.
  Status PushLocked(const std::function<Status()>& push);
  bool ControlUsableLocked() const;
  /// Writes members.state and routes.state if they changed since written.
  void PersistDirtyLocked();
  void RotateLogsLocked();
  void LoadLiveLocked();
  pid_t PidLocked() const;
  std::string PidFile() const;

  // Constant after construction.
  const NginxSettings settings_;
  EventSink& events_;
  const Clock& clock_;
  const std::string prefix_;
  const std::string control_socket_;
  const std::string members_file_;
  const std::string routes_file_;

  mutable std::mutex mu_;
  std::vector<EndpointConfig> wanted_;              // as ApplySites gave them
  std::vector<EndpointConfig> endpoints_;           // admitted
  std::map<std::string, EndpointConfig> current_;   // what nginx serves per endpoint
  std::map<std::string, std::string> held_back_;    // name -> why
  std::map<std::string, RefusedEndpoint> refused_;  // by nginx -t
  std::map<std::string, TimePoint> refused_at_;
  std::set<std::string> live_servers_;                    // ServerKeys of the live config
  std::map<std::string, EndpointConfig> live_endpoints_;  // reload mode: in the live config
  MemberLists live_members_;                              // reload mode: in the live config
  MemberLists members_;
  bool members_dirty_ = false;                               // members_ changed since members.state was written
  RouteTables routes_;                                       // wanted, from endpoints_
  std::map<std::string, std::vector<Route>> pushed_routes_;  // what nginx has, as far as known
  std::set<std::string> unknown_routes_;                     // listen keys nginx may have from before (pushed empty)
  bool routes_dirty_ = false;
  bool sites_applied_ = false;  // ApplySites was called: routes_ is what is wanted
  std::set<std::string> unpushed_members_;
  bool control_down_ = false;
  TimePoint control_retry_at_{};
  int push_count_ = 0;
  std::optional<Rendering> last_rendering_;
  std::map<std::string, std::string> live_files_;
  std::map<std::string, std::string> failed_files_;
  Status last_error_;
  ReloadCoalescer coalescer_;
  int generation_ = 0;
  pid_t nginx_pid_ = 0;
  int reload_count_ = 0;
  bool started_ = false;
};

}  // namespace reactor
