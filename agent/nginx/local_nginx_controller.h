// The NginxController for the nginx on this host (SPEC.md §7).
//
// Layout under `prefix` (both modes keep their state there):
//   conf -> conf.<N>     managed: the live tree (nginx.conf + sites.conf), a
//                        symlink swapped atomically by rename(2)
//   conf.<N>/            the live generation
//   conf.new/            a candidate being tested (removed after)
//   conf.last-good/      the tree that was live before the current one
//   logs/nginx.pid, logs/error.log, logs/access.log, logs/nginx.stderr
//   temp/                client_body, proxy, ... temp paths
//   control/control.sock the control server (dynamic upstreams; dir is 0700)
//   members.state        persisted member lists, loaded by nginx at start
//                        (written by Flush, Stop, Detach and before a start)
// System mode writes conf_dir/reactor.conf (tested with the system's
// `nginx -t`, restored on failure) and keeps the previous one in
// conf.last-good/reactor.conf.
//
// Thread-safe: every public method takes the one mutex.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/event_sink.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/nginx/nginx_members.h"
#include "agent/nginx/nginx_render.h"
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

  /// Managed mode (a no-op in system mode): stops nginx (graceful SIGQUIT, SIGKILL to its process
  /// group after `timeout`) and waits for it. For tests and uninstall.
  Status Stop(Duration timeout = Duration(10000));
  /// The nginx master's pid, 0 when not running.
  pid_t MasterPid() const;

 private:
  // The last rendering and what it was rendered from: a round that changes
  // nothing renders nothing (1,000 endpoints take a noticeable time in mstch).
  struct Rendering {
    NginxTemplates templates;
    std::vector<EndpointConfig> endpoints;
    MemberLists members;  // reload mode only
    std::map<std::string, std::string> files;
    Duration took{0};
  };

  // Everything below is protected by mu_.
  Result<std::map<std::string, std::string>> RenderLocked();
  Status ApplyLocked();
  Status NoteChangeLocked();
  /// Both set `*test_time` to how long `nginx -t` took.
  Status InstallManagedLocked(const std::map<std::string, std::string>& files, Duration* test_time);
  Status InstallSystemLocked(const std::map<std::string, std::string>& files, Duration* test_time);
  /// `timings` goes into the reload event ("render N ms, ...").
  Status ReloadLocked(const std::string& timings);
  Status SpawnLocked();
  Status RepushMembersLocked();
  /// Writes members.state if members_ changed since it was last written.
  void PersistDirtyMembersLocked();
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

  mutable std::mutex mu_;
  std::vector<EndpointConfig> endpoints_;
  MemberLists members_;
  bool members_dirty_ = false;  // members_ changed since members.state was written
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
