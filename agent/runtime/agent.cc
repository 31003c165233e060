#include "agent/runtime/agent.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/backup/backup_job.h"
#include "agent/cloud/async_cloud.h"
#include "agent/cloud/docker_cloud.h"
#include "agent/cloud/process_cloud.h"
#include "agent/cloud/static_cloud.h"
#include "agent/cluster/host_membership.h"
#include "agent/common/units.h"
#include "agent/endpoint/endpoint_parser.h"
#include "agent/metrics/tcp_table.h"
#include "agent/nginx/bounded_nginx_controller.h"
#include "agent/nginx/nginx_control_client.h"
#include "agent/nginx/nginx_factory.h"
#include "agent/store/keys.h"
#include "agent/store/store_options.h"
#include "agent/telemetry/counter_registry.h"
#include "agent/telemetry/counting_store.h"

namespace reactor {

namespace fs = std::filesystem;

namespace {

// The scaling policy's numbers: nginx traffic summed over every host's
// published counters (ClusterTraffic; on one host the same numbers as its own
// access log), plus the custom metrics pushed through the API (which win over
// nothing built in: their names cannot clash, the API refuses built-in names).
// Counters that cannot be read leave the traffic metrics out: the policy then
// holds the count (a rule without its metric decides nothing).
class AgentMetricsSource : public MetricsSource {
 public:
  AgentMetricsSource(ClusterTraffic& traffic, CustomMetrics& custom) : traffic_(traffic), custom_(custom) {}
  std::map<std::string, double> Averages(const std::string& endpoint, Duration window,
                                         const std::vector<std::string>& backends) override {
    std::map<std::string, double> out;
    auto m = traffic_.Metrics(endpoint, window, backends);
    if (m.ok()) {
      out = m->averages;
      last_error_.clear();
    } else if (m.status().message() != last_error_) {
      last_error_ = m.status().message();  // said once until it changes
      spdlog::warn("traffic of {}: {}", endpoint, m.status().ToString());
    }
    for (const auto& [name, value] : custom_.Current(endpoint)) out[name] = value;
    return out;
  }

 private:
  ClusterTraffic& traffic_;
  CustomMetrics& custom_;
  std::string last_error_;  // the policy calls from one thread
};

std::vector<std::string> ActiveAddresses(Store& store, const std::string& endpoint) {
  std::vector<std::string> out;
  auto list = InstanceTable(store).List(endpoint);
  if (!list.ok()) return out;
  for (const auto& r : *list) {
    if (r.state == InstanceState::kActive && !r.address.empty()) out.push_back(r.address);
  }
  return out;
}

}  // namespace

Result<std::string> LoadOrCreateToken(const std::string& path) {
  std::ifstream in(path);
  if (in) {
    // Like ssh with a private key: a token others can read is no secret.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return Status::InvalidArgument("[agent] token_file " + path + ": permissions " + mode +
                                     " let group or others read it; run chmod 600 " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token = ss.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.size() < 16) return Status::InvalidArgument("token_file " + path + ": token shorter than 16 characters");
    return token;
  }
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  unsigned char raw[32];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(raw), sizeof raw)) {
    return Status::IOError("/dev/urandom", "cannot read random bytes for the token");
  }
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char c : raw) {
    token += hex[c >> 4];
    token += hex[c & 15];
  }
  // O_EXCL: never clobber a token another process wrote meanwhile.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("token_file " + path, strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok) return Status::IOError("token_file " + path, "short write");
  return token;
}

Agent::Agent(AgentConfig config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)), clock_(SystemClock::Get()) {}

Agent::~Agent() {
  if (api_) api_->Stop();
  if (wake_watcher_) wake_watcher_->Stop();
  wake_watch_stop_ = true;
  if (wake_watch_thread_.joinable()) wake_watch_thread_.join();
  if (health_) health_->Stop();
  route_watcher_.reset();
  reconciler_.reset();
  if (nginx_) nginx_->Detach();
}

Status Agent::Start() {
  // The API's TLS files are checked before anything starts (api_tls.h).
  const ApiTlsFiles api_tls{config_.tls_cert_file, config_.tls_key_file};
  REACTOR_RETURN_IF_ERROR(CheckApiTlsFiles(api_tls).WithContext(config_path_));
  auto token = LoadOrCreateToken(config_.token_file);
  if (!token.ok()) return token.status();

  std::string url = config_.state.ToString();
  if (config_.state.kind == AgentConfig::State::Kind::kSqlite) {
    std::error_code ec;
    fs::create_directories(fs::path(config_.state.sqlite_path).parent_path(), ec);
  }
  StoreOptions store_options = StoreOptionsFor(config_);
  // What every round (and most API calls) reads; on etcd these are answered
  // from a watched local copy instead of a round trip each.
  store_options.cached_prefixes = {EndpointPrefix(),     kKeyRoot + "instances/", OwnerPrefix(), EndpointStatusPrefix(),
                                   SlotPrefix(),         CordonPrefix(),          DrainPrefix(), ManagerPrefix(),
                                   kKeyRoot + "metrics/"};
  auto store = OpenStore(url, clock_, store_options);
  if (!store.ok()) return store.status().WithContext("state = " + url);
  store_ = std::make_unique<CountingStore>(std::move(*store), CounterRegistry::Global());
  events_ = std::make_unique<EventLog>(*store_, clock_);

  // The loop and the route watcher reach nginx only through a bound: a
  // controller that does not answer costs them 500 ms a second at most.
  nginx_ = std::make_unique<BoundedNginxController>(MakeNginxController(config_.nginx, *events_, clock_));
  REACTOR_RETURN_IF_ERROR(nginx_->Start().WithContext("nginx"));

  ProcessCloudSettings ps;
  ps.state_dir = config_.state_dir + "/instances";
  ps.log_dir = config_.process.log_dir;
  ps.port_range = config_.process.port_range;
  if (!config_.address.empty()) ps.address = config_.address;
  clouds_[CloudKind::kProcess] = std::make_unique<ProcessCloud>(ps, *events_, clock_);
  clouds_[CloudKind::kStatic] = std::make_unique<StaticCloud>();
  // The docker driver is always present: a missing or refusing socket shows
  // up as launch errors (with backoff) for docker endpoints only.
  // dockerd can hang: the loop reaches it only through AsyncCloud, which
  // never blocks (launches and listings run on its own threads).
  docker_driver_ = MakeDockerCloud(config_.docker, config_.name, *events_, clock_);
  clouds_[CloudKind::kDocker] = std::make_unique<AsyncCloud>(*docker_driver_, config_.name, clock_);

  health_ = std::make_unique<HealthChecker>(clock_);
  health_->SetOnTransition([this] { Wake(); });
  health_->Start();
  collector_ = std::make_unique<MetricsCollector>(nginx_->AccessLogPath(), clock_);
  custom_metrics_ = std::make_unique<CustomMetrics>(*store_, clock_);
  cluster_traffic_ = std::make_unique<ClusterTraffic>(*store_, clock_);
  metrics_source_ = std::make_unique<AgentMetricsSource>(*cluster_traffic_, *custom_metrics_);
  // Scale to zero: held requests, of any host's nginx, are demand.
  auto wake_source = std::make_unique<StoreWakeSource>(*store_, clock_);
  StoreWakeSource* wakes = wake_source.get();
  wake_source_ = std::move(wake_source);
  wake_watch_thread_ = std::thread([this, wakes] {
    while (!wake_watch_stop_) {
      Result<bool> changed = wakes->WaitForChange(Duration(500));
      if (changed.ok() && *changed) Wake();
      if (!changed.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the store is away
    }
  });
  policy_ = std::make_unique<RulesPolicy>(*metrics_source_, clock_, wake_source_.get());
  if (config_.nginx.upstreams == NginxSettings::Upstreams::kDynamic) {
    // What this host's nginx holds goes to the store (the endpoint's owner
    // may be another host) and wakes this loop at once.
    wake_recorder_ = std::make_unique<StoreWakeRecorder>(*store_, clock_, config_.name, config_.lease_ttl);
    NginxWakeWatcher::Options wo;
    wo.control_socket = ControlSocketPath(config_.nginx.prefix);
    StoreWakeRecorder* recorder = wake_recorder_.get();
    wake_watcher_ =
        std::make_unique<NginxWakeWatcher>(wo, [this, recorder](const std::vector<HeldRequests>& changed, bool open) {
          bool grew = false;
          for (const HeldRequests& h : changed) {
            Status st = recorder->Record(h.endpoint, h.held, h.since_ms);
            if (!st.ok()) spdlog::warn("held requests of {}: {}", h.endpoint, st.ToString());
            grew = grew || h.held > 0;
          }
          if (open) (void)recorder->KeepAlive();
          if (grew) Wake();
        });
    wake_watcher_->Start();
  }
  std::map<CloudKind, Cloud*> clouds;
  for (auto& [kind, cloud] : clouds_) clouds[kind] = cloud.get();
  // This host in the cluster (of one, on SQLite): its record under a lease.
  HostMembership::Options mo;
  mo.record.name = config_.name;
  mo.record.address = config_.address.empty() ? "127.0.0.1" : config_.address;
  mo.record.api = config_.listen.ToString();
  mo.record.slots = config_.slots;
  for (auto& [kind, cloud] : clouds_) mo.record.drivers.push_back(cloud->Name());
  mo.record.version = REACTOR_VERSION;
  mo.lease_ttl = config_.lease_ttl;
  membership_ = std::make_unique<HostMembership>(mo, *store_, *events_, clock_);
  REACTOR_RETURN_IF_ERROR(membership_->Start());
  TrafficPublisher::Options to;
  to.manager = config_.name;
  HostMembership* membership = membership_.get();
  to.lease = [membership] { return membership->Lease(); };
  traffic_publisher_ = std::make_unique<TrafficPublisher>(to, *collector_, *store_);

  ReconcilerOptions opts;
  opts.manager = config_.name;
  opts.membership = membership_.get();
  opts.slots = config_.slots;
  opts.lease_ttl = config_.lease_ttl;
  // A new owner waits a lease TTL plus etcd's election timeout (1 s by
  // default) before destructive actions: etcd 3.4 resets lease TTLs on a
  // leader change, so a predecessor's lease can outlive its TTL.
  opts.takeover_wait = config_.lease_ttl + Duration(1000);
  // Every host's nginx must have heard of a drain before the instance stops:
  // they read the store once a round.
  opts.min_drain = std::max(opts.min_drain, 2 * config_.interval);
  CustomMetrics* custom = custom_metrics_.get();
  opts.on_endpoint_removed = [custom](const std::string& endpoint) {
    Status cleared = custom->Clear(endpoint);
    if (!cleared.ok()) spdlog::warn("custom metrics of {}: {}", endpoint, cleared.ToString());
  };
  reconciler_ = std::make_unique<Reconciler>(
      opts, *store_, *events_, *nginx_, *health_, clouds, *policy_, clock_,
      [](const std::string& address) { return CountEstablishedTo(ReadTcpTable(), address); });
  route_watcher_ = std::make_unique<RouteWatcher>(*store_, reconciler_->Sites(), *nginx_);
  route_watcher_->Start();
  probe_ = std::make_unique<ProcHostPortProbe>();
  registry_ = std::make_unique<EndpointRegistry>(*store_, probe_.get());

  ApiContext ctx;
  ctx.store = store_.get();
  ctx.registry = registry_.get();
  ctx.events = events_.get();
  ctx.reconciler = reconciler_.get();
  ctx.manager = config_.name;
  ctx.token = *token;
  ctx.wake = [this] { Wake(); };
  // Rotating backups: one agent of the cluster takes each (a lease-held job).
  backup_ = std::make_unique<BackupJob>(*store_, *events_, clock_, BackupSettingsFor(config_));
  if (backup_->enabled()) {
    BackupJob* job = backup_.get();
    ctx.backup = [job] { return job->TakeNow(); };
  }
  telemetry_ = std::make_unique<AgentTelemetry>(AgentTelemetry::Sources{
      registry_.get(), reconciler_.get(), store_.get(), collector_.get(), custom_metrics_.get(), health_.get(),
      &CounterRegistry::Global(), [this] { return api_ ? api_->OpenStreams() : 0; }});
  if (wake_watcher_) {
    NginxWakeWatcher* watcher = wake_watcher_.get();
    telemetry_->SetHoldReport([watcher] { return watcher->Report(); });
  }
  ctx.telemetry = telemetry_.get();
  ctx.metrics_without_token = config_.metrics_without_token;
  ctx.ui_dir = config_.ui_dir;
  ctx.tls = api_tls;
  api_ = std::make_unique<ApiServer>(ctx);
  Store* store_ptr = store_.get();
  metrics_routes_ = std::make_unique<MetricsRoutes>(
      *collector_, *custom_metrics_, *registry_, *store_,
      [store_ptr](const std::string& endpoint) { return ActiveAddresses(*store_ptr, endpoint); });
  metrics_routes_->UseClusterTraffic(cluster_traffic_.get());
  REACTOR_RETURN_IF_ERROR(api_->Start(config_.listen.ToString(), metrics_routes_.get()));
  // systemd (Type=notify): ready once the API answers. A no-op without NOTIFY_SOCKET.
  sd_notifyf(0, "READY=1\nSTATUS=serving API on %s", config_.listen.ToString().c_str());
  events_->Record("", "start",
                  "agent " + config_.name + " started; API on " + config_.listen.ToString() + ", state " + url +
                      ", nginx prefix " + config_.nginx.prefix);
  return Status::Ok();
}

void Agent::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

void Agent::RequestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

void Agent::RequestReload() {
  std::lock_guard<std::mutex> lock(mu_);
  reload_ = true;
  cv_.notify_all();
}

void Agent::ReloadConfig() {
  auto fresh = LoadAgentConfig(config_path_);
  if (!fresh.ok()) {
    events_->Record("", "config", "reload of " + config_path_ + " refused: " + fresh.status().message());
    return;
  }
  std::vector<std::string> restart_needed;
  if (fresh->listen.ToString() != config_.listen.ToString()) restart_needed.push_back("[agent] listen");
  if (fresh->tls_cert_file != config_.tls_cert_file || fresh->tls_key_file != config_.tls_key_file ||
      fresh->insecure_listen != config_.insecure_listen) {
    restart_needed.push_back("[agent] tls_cert_file, tls_key_file and insecure_listen");
  }
  if (fresh->state.ToString() != config_.state.ToString()) restart_needed.push_back("[agent] state");
  if (fresh->name != config_.name) restart_needed.push_back("[agent] name");
  config_.interval = fresh->interval;
  config_.endpoints_dir = fresh->endpoints_dir;
  std::string msg = "reloaded " + config_path_;
  if (fresh->slots != config_.slots) msg += "; slots needs a restart to change";
  for (const auto& k : restart_needed) msg += "; " + k + " needs a restart to change";
  events_->Record("", "config", msg);
}

// Declarative endpoints: each NAME.conf in endpoints_dir is managed as
// endpoint NAME; a file that disappears unmanages its endpoint.
void Agent::SyncEndpointsDir() {
  if (config_.endpoints_dir.empty()) return;
  std::error_code ec;
  std::map<std::string, std::string> seen;
  for (const auto& entry : fs::directory_iterator(config_.endpoints_dir, ec)) {
    if (entry.path().extension() != ".conf" || !entry.is_regular_file()) continue;
    std::string name = entry.path().stem().string();
    std::string path = entry.path().string();
    if (!IsValidEndpointName(name)) {
      if (dir_files_[name] != "!badname") {
        events_->Record("", "endpoints_dir", path + ": '" + name + "' is not a valid endpoint name; ignored");
        dir_files_[name] = "!badname";
      }
      continue;
    }
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    seen[name] = ss.str();
  }
  if (ec) {
    events_->Record("", "endpoints_dir", "cannot read " + config_.endpoints_dir + ": " + ec.message());
    return;
  }
  for (const auto& [name, text] : seen) {
    if (dir_files_[name] == text) continue;
    dir_files_[name] = text;
    std::string source = "file:" + config_.endpoints_dir + "/" + name + ".conf";
    auto existing = registry_->Get(name);
    if (existing.ok() && existing->ini == text) continue;
    auto r = registry_->Put(name, text, source);
    if (r.ok()) {
      events_->Record(name, "manage", std::string(*r ? "created" : "updated") + " from " + source);
    } else {
      events_->Record("", "endpoints_dir", source + " refused: " + r.status().message());
    }
  }
  auto all = registry_->List();
  if (!all.ok()) return;
  for (const auto& rec : *all) {
    if (rec.source.rfind("file:", 0) != 0 || seen.count(rec.name) || rec.state == EndpointState::kDeleting) continue;
    if (registry_->SetState(rec.name, EndpointState::kDeleting).ok()) {
      events_->Record(rec.name, "unmanage", rec.source + " was removed; draining before removal");
    }
    dir_files_.erase(rec.name);
  }
}

void Agent::Run() {
  TimePoint next_dir_sync{};
  std::string publish_error;  // said once in the agent log until it changes
  while (true) {
    bool reload = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      reload = reload_;
      reload_ = false;
    }
    if (reload) {
      ReloadConfig();
      next_dir_sync = TimePoint{};
    }
    if (clock_.Now() >= next_dir_sync) {
      SyncEndpointsDir();
      next_dir_sync = clock_.Now() + Duration(5000);
    }
    // The watchdog is petted only by a loop that completes rounds.
    sd_notify(0, "WATCHDOG=1");
    Status st = nginx_->Supervise();
    if (!st.ok()) spdlog::warn("nginx supervision: {}", st.ToString());
    // A structural change whose reload_delay has passed goes to nginx now,
    // not after this round (at 1,000 endpoints a round takes a while).
    st = nginx_->Flush();
    if (!st.ok()) spdlog::warn("nginx flush: {}", st.ToString());
    collector_->Poll();
    // Each round, before the policy reads: on one host the policy sees what
    // the collector just read, as fresh as the log itself. The addresses are
    // the last round's (reading and decoding every instance record again
    // here took a fifth of the loop thread's CPU at 10,000 instances): an instance
    // reaches nginx only at the end of a round, so none is missed.
    st = traffic_publisher_->Publish(reconciler_->InstanceAddresses(), ReadTcpTable());
    if (!st.ok() && st.message() != publish_error) spdlog::warn("traffic counters: {}", st.ToString());
    publish_error = st.ok() ? "" : st.message();
    st = reconciler_->RunOnce();
    CountEvent("reactor_rounds_total");
    if (backup_->enabled()) {
      Status backed = backup_->RunIfDue();
      if (!backed.ok()) spdlog::warn("backup: {}", backed.ToString());
    }
    if (st.code() == Status::Code::kUnavailable) {
      // Cut off from the store: nginx and the instances keep serving as
      // they are, and nothing is changed until it answers again.
      if (store_away_since_ms_ == 0) {
        store_away_since_ms_ = clock_.WallMillis();
        spdlog::error("state store unavailable: {}; serving as before and making no changes until it answers",
                      st.ToString());
      }
    } else if (!st.ok()) {
      events_->Record("", "error", "reconcile round failed: " + st.ToString());
    }
    if (st.ok() && store_away_since_ms_ != 0) {
      events_->Record("", "store",
                      "state store reachable again after " +
                          FormatDuration(Duration(clock_.WallMillis() - store_away_since_ms_)) + "; changes resume");
      store_away_since_ms_ = 0;
    }
    // A round at 1,000 endpoints allocates and frees tens of MiB (store
    // reads, the health snapshot, a rendering), and the API threads' arenas
    // keep what validating endpoints took: hand free pages back to the
    // system (measured: 123 MiB resident with 33 MiB in use, without this).
    malloc_trim(0);

    // Sleep until the next round: a full interval, or less while instances
    // are starting or draining so their transitions are noticed promptly.
    Duration wait = config_.interval;
    for (const auto& s : reconciler_->AllStatus()) {
      if (s.draining > 0 || s.healthy < s.instances) wait = std::min(wait, Duration(250));
    }
    // A structural change waits out reload_delay, not the rest of the interval.
    if (std::optional<Duration> due = nginx_->UntilFlushDue()) wait = std::min(wait, *due);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, wait, [this] { return stop_ || wake_ || reload_; });
    wake_ = false;
  }
  sd_notify(0, "STOPPING=1\nSTATUS=stopping; nginx keeps serving");
  events_->Record("", "stop", "agent stopping; nginx keeps serving");
}

}  // namespace reactor
