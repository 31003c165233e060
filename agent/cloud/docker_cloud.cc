#include "agent/cloud/docker_cloud.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/cloud/command_line.h"
#include "agent/metrics/tcp_table.h"

namespace reactor {

namespace {

constexpr char kManaged[] = "reactor.managed";
constexpr char kManager[] = "reactor.manager";
constexpr char kEndpoint[] = "reactor.endpoint";
constexpr char kInstance[] = "reactor.instance";
constexpr char kSlots[] = "reactor.slots";
constexpr char kNetwork[] = "reactor.network";
constexpr char kPort[] = "reactor.port";
constexpr char kAddress[] = "reactor.address";

bool ValidInstanceId(const std::string& id) {
  // The container name "reactor-<id>" must stay within docker's 128-ish limits.
  if (id.empty() || id.size() > 100) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool ValidEndpointName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; });
}

std::string Label(const std::map<std::string, std::string>& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

std::string ShortId(const std::string& id) { return id.substr(0, 12); }

std::string JoinHostPort(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

// ---------------------------------------------------------------------------

DockerCloud::DockerCloud(DockerCloudSettings settings, std::unique_ptr<DockerApi> api, EventSink& events, Clock& clock)
    : settings_(std::move(settings)),
      api_(std::move(api)),
      events_(events),
      clock_(clock),
      next_port_(settings_.port_range.lo) {}

DockerCloud::~DockerCloud() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    cancel_pulls_ = true;
    for (auto& [id, p] : pending_) {
      if (p->worker.joinable()) workers.push_back(std::move(p->worker));
    }
  }
  cv_.notify_all();
  for (std::thread& t : workers) t.join();
}

bool DockerCloud::OwnedByUs(const std::map<std::string, std::string>& labels, const std::string& instance_id) const {
  if (Label(labels, kManaged) != "1" || Label(labels, kInstance) != instance_id) return false;
  return settings_.manager.empty() || Label(labels, kManager) == settings_.manager;
}

void DockerCloud::ReapWorkers() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    PendingLaunch& p = *it->second;
    if (!p.done) {
      ++it;
      continue;
    }
    // The worker set `done` as its last act under mu_; it no longer needs the lock.
    if (p.worker.joinable()) p.worker.join();
    if (p.failed && !p.cancelled) {
      ++it;  // shown as failed until Stop
    } else {
      it = pending_.erase(it);
    }
  }
}

bool DockerCloud::StopRequested(const std::string& instance_id) {
  auto it = pending_.find(instance_id);
  return it == pending_.end() || it->second->cancelled;
}

Result<int> DockerCloud::PickPort(const std::vector<ContainerSummary>& containers) {
  const int lo = settings_.port_range.lo;
  const int hi = settings_.port_range.hi;
  if (lo < 1 || hi > 65535 || lo > hi) {
    return Status::InvalidArgument("bad port range " + std::to_string(lo) + "-" + std::to_string(hi));
  }
  std::set<int> taken = ListeningPorts();
  for (const ContainerSummary& c : containers) {
    if (Label(c.labels, kNetwork) == "host") taken.insert(std::atoi(Label(c.labels, kPort).c_str()));
  }
  for (const auto& [id, p] : pending_) {
    if (p->host_port > 0) taken.insert(p->host_port);
  }
  const int span = hi - lo + 1;
  if (next_port_ < lo || next_port_ > hi) next_port_ = lo;
  for (int i = 0; i < span; ++i) {
    const int port = lo + (next_port_ - lo + i) % span;
    if (taken.count(port) > 0 || !CanBindTcp(settings_.host_ip, port)) continue;
    next_port_ = port == hi ? lo : port + 1;
    return port;
  }
  return Status::Unavailable("no free port in " + std::to_string(lo) + "-" + std::to_string(hi));
}

InstanceInfo DockerCloud::PendingInfo(const PendingLaunch& p) const {
  InstanceInfo info;
  info.instance_id = p.instance_id;
  info.endpoint = p.endpoint;
  info.address = p.address;
  info.pending = !p.failed;
  info.running = false;
  info.exit_code = -1;
  info.detail = p.detail;
  return info;
}

namespace {

/// What a container's state says about its instance. `address` is what the
/// labels and published ports give.
InstanceInfo InfoFromState(const ContainerState& s, const std::string& address) {
  InstanceInfo info;
  info.instance_id = Label(s.labels, kInstance);
  info.endpoint = Label(s.labels, kEndpoint);
  info.address = address;
  const std::string cid = "container " + ShortId(s.id);
  if (s.running) {
    info.running = true;
    info.detail = s.status == "paused" ? cid + ", paused" : cid;
    return info;
  }
  info.running = false;
  if (s.status == "created") {
    info.exit_code = -1;
    info.detail = s.error.empty() ? cid + " was created but never started" : s.error;
  } else {
    info.exit_code = s.exit_code;
    if (!s.error.empty()) {
      info.detail = s.error;
    } else if (s.oom_killed) {
      info.detail = "killed for using more memory than mem_limit (exit code " + std::to_string(s.exit_code) + ")";
    } else {
      info.detail = "exited with code " + std::to_string(s.exit_code);
    }
  }
  return info;
}

}  // namespace

InstanceInfo DockerCloud::ContainerInfo(const ContainerSummary& c) {
  std::string address = Label(c.labels, kAddress);
  if (address.empty()) {
    const int port = std::atoi(Label(c.labels, kPort).c_str());
    for (const PortBinding& b : c.ports) {
      if (b.private_port != port) continue;
      std::string ip = b.host_ip;
      if (ip.empty() || ip == "0.0.0.0" || ip == "::") ip = settings_.host_ip;
      address = JoinHostPort(ip, b.host_port);
      break;
    }
  }
  ContainerState s;
  s.id = c.id;
  s.name = c.name;
  s.labels = c.labels;
  s.status = c.state;
  s.running = c.state == "running" || c.state == "paused";
  if (!s.running) {
    // The summary has no exit code or error: ask for them.
    auto inspected = api_->Inspect(c.id);
    if (inspected.ok()) {
      s = std::move(*inspected);
    } else {
      s.error = inspected.status().IsNotFound() ? "container is gone" : inspected.status().message();
    }
  }
  return InfoFromState(s, address);
}

// ---------------------------------------------------------------------------

Result<InstanceInfo> DockerCloud::Launch(const LaunchRequest& req) {
  if (req.endpoint == nullptr) return Status::InvalidArgument("launch without an endpoint");
  const EndpointConfig& ep = *req.endpoint;
  const DockerConfig& dc = ep.docker;
  if (!ValidInstanceId(req.instance_id)) {
    return Status::InvalidArgument("bad instance id '" + req.instance_id + "': use [a-z0-9-]");
  }
  if (!ValidEndpointName(ep.name)) return Status::InvalidArgument("bad endpoint name '" + ep.name + "'");
  if (!ValidImageReference(dc.image)) {
    return Status::InvalidArgument("[cloud:docker] image: bad image reference '" + dc.image + "'");
  }
  if (!dc.command.empty()) {
    if (auto words = SplitCommandLine(dc.command); !words.ok()) {
      return words.status().WithContext("[cloud:docker] command");
    }
  }
  const bool host_mode = settings_.network == DockerCloudSettings::Network::kHost;
  if (!host_mode && (ep.port < 1 || ep.port > 65535)) {
    return Status::InvalidArgument("[endpoint] port " + std::to_string(ep.port) + " is not a TCP port");
  }
  const std::string name = ContainerName(req.instance_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return Status::Unavailable("docker cloud is shutting down");
    ReapWorkers();
    if (pending_.count(req.instance_id) > 0) return Status::Conflict("instance " + req.instance_id + " exists");
  }

  // Quick questions to dockerd, outside the lock. The first one also tells
  // the caller at once when dockerd cannot be reached.
  auto exists = api_->ImageExists(dc.image);
  if (!exists.ok()) return exists.status();
  auto existing = api_->Inspect(name);
  if (existing.ok()) return Status::Conflict("a container named " + name + " exists");
  if (!existing.status().IsNotFound()) return existing.status();
  std::vector<ContainerSummary> containers;
  if (host_mode) {
    auto listed = api_->List({{kManaged, "1"}}, /*all=*/true);
    if (!listed.ok()) return listed.status();
    containers = std::move(*listed);
  }

  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return Status::Unavailable("docker cloud is shutting down");
  if (pending_.count(req.instance_id) > 0) return Status::Conflict("instance " + req.instance_id + " exists");

  auto p = std::make_unique<PendingLaunch>();
  p->instance_id = req.instance_id;
  p->endpoint = ep.name;
  p->manager = req.manager;
  p->image = dc.image;
  p->pull = !*exists;
  p->detail = p->pull ? "pulling image " + dc.image : "starting container";

  int app_port = ep.port;
  if (host_mode) {
    auto port = PickPort(containers);
    if (!port.ok()) return port.status();
    app_port = *port;
    p->host_port = *port;
    p->address = JoinHostPort(settings_.host_ip, *port);
  }

  const std::map<std::string, std::string> vars = {
      {"PORT", std::to_string(app_port)}, {"NAME", req.instance_id}, {"ENDPOINT", ep.name}};
  ContainerSpec spec;
  spec.name = name;
  spec.image = dc.image;
  if (!dc.command.empty()) {
    auto argv = BuildArgv(dc.command, vars);
    if (!argv.ok()) return argv.status().WithContext("[cloud:docker] command");
    spec.cmd = std::move(*argv);
  }
  for (const auto& [key, value] : dc.environment) {
    if (vars.count(key) > 0) continue;  // ours win, as in the process driver
    spec.env.push_back(key + "=" + ExpandVariables(value, vars));
  }
  for (const auto& [key, value] : vars) spec.env.push_back(key + "=" + value);
  spec.user = dc.user;
  spec.hostname = dc.hostname;
  spec.memory = dc.mem_limit;
  spec.dns = dc.dns;
  spec.host_ip = settings_.host_ip;
  spec.labels = {{kManaged, "1"},
                 {kManager, req.manager},
                 {kEndpoint, ep.name},
                 {kInstance, req.instance_id},
                 {kSlots, std::to_string(dc.slots)},
                 {kNetwork, host_mode ? "host" : "bridge"},
                 {kPort, std::to_string(app_port)}};
  if (host_mode) {
    spec.network_mode = "host";
    spec.labels[kAddress] = p->address;
  } else {
    spec.network_mode = "bridge";
    spec.publish_port = app_port;
  }

  PendingLaunch& launch = *p;
  pending_[req.instance_id] = std::move(p);
  try {
    launch.worker = std::thread(&DockerCloud::RunLaunch, this, req.instance_id, std::move(spec));
  } catch (const std::system_error& e) {
    pending_.erase(req.instance_id);
    return Status::Unavailable(std::string("cannot start a launch worker: ") + e.what());
  }
  known_.insert(req.instance_id);
  events_.Record(ep.name, "launch",
                 "launching instance " + req.instance_id + " from image " + dc.image + ": " + launch.detail);
  return PendingInfo(launch);
}

Status DockerCloud::PullShared(const std::string& image, const std::string& instance_id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = pulls_.find(image);
  if (it != pulls_.end()) {
    std::shared_ptr<PullState> state = it->second;
    cv_.wait(lock, [&] { return state->done || shutting_down_ || StopRequested(instance_id); });
    if (state->done) return state->status;
    return Status::Unavailable("cancelled");
  }
  auto state = std::make_shared<PullState>();
  pulls_[image] = state;
  lock.unlock();
  const TimePoint started = clock_.Now();
  Status st = api_->Pull(image, &cancel_pulls_);
  lock.lock();
  state->done = true;
  state->status = st;
  pulls_.erase(image);
  cv_.notify_all();
  lock.unlock();
  if (st.ok()) {
    spdlog::info("docker cloud: pulled image {} in {}", image,
                 FormatDuration(std::chrono::duration_cast<Duration>(clock_.Now() - started)));
  }
  return st;
}

void DockerCloud::FailLaunch(const std::string& instance_id, const std::string& why) {
  std::string endpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(instance_id);
    if (it == pending_.end()) return;
    endpoint = it->second->endpoint;
  }
  // The event first (not under mu_): whoever sees the launch failed in
  // List() finds its reason already in the log.
  events_.Record(endpoint, "error", "instance " + instance_id + " did not start: " + why);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(instance_id);
  if (it == pending_.end()) return;
  it->second->failed = true;
  it->second->detail = why;
}

void DockerCloud::RunLaunch(std::string instance_id, ContainerSpec spec) {
  bool pull = false;
  std::string endpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    PendingLaunch& p = *pending_.at(instance_id);
    pull = p.pull;
    endpoint = p.endpoint;
  }
  auto finish = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.at(instance_id)->done = true;
    cv_.notify_all();
  };
  auto stop_requested = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return StopRequested(instance_id);
  };
  auto shutting_down = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return shutting_down_;
  };
  auto set_detail = [&](const std::string& detail) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.at(instance_id)->detail = detail;
  };

  if (pull) {
    Status st = PullShared(spec.image, instance_id);
    if (stop_requested() || shutting_down()) return finish();
    if (!st.ok()) {
      FailLaunch(instance_id, "pull of image " + spec.image + " failed: " + st.message());
      return finish();
    }
    set_detail("starting container");
  }
  if (stop_requested() || shutting_down()) return finish();

  auto created = api_->CreateContainer(spec);
  if (!created.ok()) {
    if (!stop_requested()) FailLaunch(instance_id, "create container " + spec.name + ": " + created.status().message());
    return finish();
  }
  const std::string cid = *created;
  auto remove_ours = [&] {
    Status rm = api_->Remove(cid, /*force=*/true);
    if (!rm.ok() && !rm.IsNotFound()) spdlog::warn("docker cloud: removing {}: {}", spec.name, rm.ToString());
  };
  if (stop_requested()) {
    remove_ours();
    return finish();
  }
  // On shutdown, a container that was created but never started is left
  // for the next agent: it lists as not running and is replaced.
  if (shutting_down()) return finish();
  set_detail("starting container " + ShortId(cid));

  Status started = api_->Start(cid);
  if (!started.ok()) {
    remove_ours();
    if (!stop_requested()) FailLaunch(instance_id, "start container " + spec.name + ": " + started.message());
    return finish();
  }
  if (stop_requested()) {
    remove_ours();  // Stop may have looked before the container existed
    return finish();
  }
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    address = pending_.at(instance_id)->address;
  }
  if (address.empty()) {
    // Bridge mode: docker binds the host port during start; read it back.
    auto s = api_->Inspect(cid);
    if (!s.ok()) {
      remove_ours();
      FailLaunch(instance_id, "inspect container " + spec.name + ": " + s.status().message());
      return finish();
    }
    for (const PortBinding& b : s->ports) {
      if (b.private_port == spec.publish_port) {
        address =
            JoinHostPort(b.host_ip.empty() || b.host_ip == "0.0.0.0" ? settings_.host_ip : b.host_ip, b.host_port);
        break;
      }
    }
    if (address.empty()) {
      // E.g. dockerd --bridge=none: the container runs, unreachable.
      remove_ours();
      FailLaunch(instance_id, "docker published no host port for " + std::to_string(spec.publish_port) + "/tcp of " +
                                  spec.name + " (is the daemon's bridge network disabled? then use network = host)");
      return finish();
    }
  }
  events_.Record(endpoint, "launch",
                 "started instance " + instance_id + " (container " + ShortId(cid) + ")" +
                     (address.empty() ? "" : " on " + address));
  finish();
}

Status DockerCloud::Stop(const std::string& instance_id, Duration grace) {
  if (grace.count() < 0) grace = settings_.stop_grace;
  if (!ValidInstanceId(instance_id)) return Status::Ok();  // no container can have that name
  std::string endpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReapWorkers();
    auto it = pending_.find(instance_id);
    if (it != pending_.end()) {
      PendingLaunch& p = *it->second;
      endpoint = p.endpoint;
      p.cancelled = true;
      if (p.done) {
        if (p.worker.joinable()) p.worker.join();
        pending_.erase(it);
      }
      cv_.notify_all();
    }
  }

  const std::string name = ContainerName(instance_id);
  auto state = api_->Inspect(name);
  if (!state.ok()) {
    if (!state.status().IsNotFound()) return state.status();
    {
      std::lock_guard<std::mutex> lock(mu_);
      known_.erase(instance_id);
    }
    if (!endpoint.empty()) events_.Record(endpoint, "stop", "instance " + instance_id + " cancelled before it started");
    return Status::Ok();
  }
  if (!OwnedByUs(state->labels, instance_id)) {
    return Status::Conflict("container " + name + " is not one of " +
                            (settings_.manager.empty() ? "reactor's" : "manager " + settings_.manager + "'s") +
                            "; not touched");
  }
  endpoint = Label(state->labels, kEndpoint);
  const TimePoint began = clock_.Now();
  std::string how = "removed (" + InfoFromState(*state, "").detail + ")";
  if (state->running) {
    Status st = api_->Stop(state->id, grace);
    if (!st.ok() && !st.IsNotFound()) {
      spdlog::warn("docker cloud: stopping {}: {}; removing it by force", name, st.ToString());
    }
    how = "stopped in " + FormatDuration(std::chrono::duration_cast<Duration>(clock_.Now() - began));
  }
  Status rm = api_->Remove(state->id, /*force=*/true);
  if (!rm.ok() && !rm.IsNotFound()) return rm.WithContext("remove " + name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    known_.erase(instance_id);
    exited_.erase(state->id);
  }
  events_.Record(endpoint, "stop", "instance " + instance_id + " (container " + ShortId(state->id) + ") " + how);
  return Status::Ok();
}

Result<std::vector<InstanceInfo>> DockerCloud::List(const std::string& manager) {
  auto listed = api_->List({{kManaged, "1"}, {kManager, manager}}, /*all=*/true);
  if (!listed.ok()) return listed.status();

  // Which ids the in-memory launches speak for (their containers are not
  // shown), and which are being cancelled (shown nowhere).
  std::set<std::string> hidden;
  std::vector<InstanceInfo> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReapWorkers();
    for (const auto& [id, p] : pending_) {
      if (p->manager != manager) continue;
      if (p->done && !p->failed && !p->cancelled) continue;  // started: its container is listed below
      hidden.insert(id);
      if (!p->cancelled) out.push_back(PendingInfo(*p));
    }
  }

  for (const ContainerSummary& c : *listed) {
    const std::string id = Label(c.labels, kInstance);
    if (id.empty() || hidden.count(id) > 0) continue;
    if (Label(c.labels, kManager) != manager || Label(c.labels, kManaged) != "1") continue;  // belt and braces
    InstanceInfo info = ContainerInfo(c);
    std::string event_kind, event_message;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (known_.insert(id).second && info.running) {
        event_kind = "adopt";
        event_message = "adopted running instance " + id + " (container " + ShortId(c.id) + ")" +
                        (info.address.empty() ? "" : " on " + info.address);
      } else if (!info.running && exited_.insert(c.id).second) {
        event_kind = "exit";
        event_message = "instance " + id + " (container " + ShortId(c.id) + ") " + info.detail;
      }
    }
    if (!event_kind.empty()) events_.Record(info.endpoint, event_kind, event_message);
    out.push_back(std::move(info));
  }
  return out;
}

Result<InstanceInfo> DockerCloud::Inspect(const std::string& instance_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(instance_id);
    if (it != pending_.end() && !it->second->cancelled && (!it->second->done || it->second->failed)) {
      return PendingInfo(*it->second);
    }
  }
  if (!ValidInstanceId(instance_id)) return Status::NotFound("no docker instance " + instance_id);
  auto state = api_->Inspect(ContainerName(instance_id));
  if (!state.ok()) {
    if (state.status().IsNotFound()) return Status::NotFound("no docker instance " + instance_id);
    return state.status();
  }
  if (!OwnedByUs(state->labels, instance_id)) return Status::NotFound("no docker instance " + instance_id);
  std::string address = Label(state->labels, kAddress);
  if (address.empty()) {
    const int port = std::atoi(Label(state->labels, kPort).c_str());
    for (const PortBinding& b : state->ports) {
      if (b.private_port == port) {
        address =
            JoinHostPort(b.host_ip.empty() || b.host_ip == "0.0.0.0" ? settings_.host_ip : b.host_ip, b.host_port);
        break;
      }
    }
  }
  return InfoFromState(*state, address);
}

// ---------------------------------------------------------------------------

std::unique_ptr<DockerCloud> MakeDockerCloud(const AgentConfig::DockerCloud& config, const std::string& manager,
                                             EventSink& events, Clock& clock) {
  DockerClientSettings cs;
  cs.socket = config.socket;
  DockerCloudSettings s;
  s.network = config.network == AgentConfig::DockerCloud::Network::kHost ? DockerCloudSettings::Network::kHost
                                                                         : DockerCloudSettings::Network::kBridge;
  s.host_ip = config.host_ip;
  s.port_range = config.port_range;
  s.manager = manager;
  s.socket = config.socket;
  return std::make_unique<DockerCloud>(s, std::make_unique<DockerClient>(cs), events, clock);
}

}  // namespace reactor
