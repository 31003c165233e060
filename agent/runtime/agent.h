// reactor-agent's wiring: builds the real store, nginx controller, clouds,
// health checker, reconciler and API server from an AgentConfig, and runs the
// loop. main() only parses flags and signals.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/api/api_server.h"
#include "agent/backup/backup_job.h"
#include "agent/cloud/cloud.h"
#include "agent/common/agent_config.h"
#include "agent/common/clock.h"
#include "agent/endpoint/endpoint_registry.h"
#include "agent/events/event_log.h"
#include "agent/health/health_checker.h"
#include "agent/metrics/cluster_traffic.h"
#include "agent/metrics/custom_metrics.h"
#include "agent/metrics/metrics_collector.h"
#include "agent/metrics/metrics_routes.h"
#include "agent/scaler/rules_policy.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/nginx/nginx_wake_watcher.h"
#include "agent/scaler/wake_source.h"
#include "agent/runtime/reconciler.h"
#include "agent/runtime/route_watcher.h"
#include "agent/store/store.h"
#include "agent/telemetry/agent_telemetry.h"

namespace reactor {

/// Reads the API token from `path`, creating it (0600, 32 random bytes as
/// hex) when it does not exist. IOError naming the file on failure.
Result<std::string> LoadOrCreateToken(const std::string& path);

class Agent {
 public:
  Agent(AgentConfig config, std::string config_path);
  ~Agent();

  /// Opens the store, starts or adopts nginx, the health checker and the
  /// API. Errors name what failed.
  Status Start();
  /// Runs rounds until RequestStop(). Thread: the caller's.
  void Run();
  /// Thread-safe; may be called from a signal-handling thread.
  void RequestStop();
  /// Re-reads the config file (SIGHUP): interval, slots and endpoints_dir
  /// take effect; other keys need a restart and are reported as such.
  void RequestReload();
  /// Wakes the loop for an immediate round.
  void Wake();

 private:
  void SyncEndpointsDir();
  void ReloadConfig();

  AgentConfig config_;
  const std::string config_path_;
  Clock& clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<NginxController> nginx_;
  std::unique_ptr<Cloud> docker_driver_;  // behind clouds_[kDocker], an AsyncCloud
  std::map<CloudKind, std::unique_ptr<Cloud>> clouds_;
  std::unique_ptr<HealthChecker> health_;
  std::unique_ptr<MetricsCollector> collector_;
  std::unique_ptr<CustomMetrics> custom_metrics_;
  std::unique_ptr<ClusterTraffic> cluster_traffic_;  // every host's counters, for the policy
  std::unique_ptr<MetricsSource> metrics_source_;
  std::unique_ptr<WakeSource> wake_source_;
  std::unique_ptr<StoreWakeRecorder> wake_recorder_;
  std::unique_ptr<NginxWakeWatcher> wake_watcher_;  // dynamic upstreams only
  // Wakes the loop when any host's nginx begins or ends a hold (a watch on
  // the wake keys); stopped by the destructor.
  std::thread wake_watch_thread_;
  std::atomic<bool> wake_watch_stop_{false};
  std::unique_ptr<ScalingPolicy> policy_;
  std::unique_ptr<MetricsRoutes> metrics_routes_;
  std::unique_ptr<HostMembership> membership_;
  std::unique_ptr<TrafficPublisher> traffic_publisher_;  // this host's counters, each round
  std::unique_ptr<BackupJob> backup_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<RouteWatcher> route_watcher_;  // route changes between rounds
  std::unique_ptr<EndpointRegistry> registry_;
  std::unique_ptr<ProcHostPortProbe> probe_;
  std::unique_ptr<AgentTelemetry> telemetry_;
  std::unique_ptr<ApiServer> api_;
  std::map<std::string, std::string> dir_files_;  // endpoint name → file content last applied

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;                // protected by mu_
  bool stop_ = false;                // protected by mu_
  bool reload_ = false;              // protected by mu_
  int64_t store_away_since_ms_ = 0;  // loop thread: wall ms the store stopped answering; 0 = it answers
};

}  // namespace reactor
