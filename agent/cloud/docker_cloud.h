// The docker driver: each instance is a container named "reactor-<id>",
// created through the Docker Engine API (docker_client.h) and labelled
//   reactor.managed=1, reactor.manager, reactor.endpoint, reactor.instance,
//   reactor.slots, reactor.network, reactor.port (the port the application
//   listens on inside the container) and, in host mode, reactor.address,
// so that a DockerCloud started later — after an agent restart — finds its
// manager's containers again (adoption). Containers without those labels,
// or another manager's, are never touched.
//
// Launch never waits for docker to do slow work: it checks that dockerd
// answers and whether the image is present, reserves what the instance
// needs, and returns pending=true. A worker thread per launch then pulls the
// image if it is missing (one pull per image, shared by the launches that
// wait for it), creates and starts the container. Container start alone
// takes about a second on some storage drivers, so it is in the background
// too. List shows the instance as pending meanwhile and, if that work fails,
// as not running with docker's message as the detail, until Stop forgets it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/cloud/cloud.h"
#include "agent/cloud/docker_client.h"
#include "agent/common/agent_config.h"
#include "agent/common/event_sink.h"
#include "agent/common/units.h"

namespace reactor {

struct DockerCloudSettings {
  enum class Network { kBridge, kHost };
  /// bridge: the endpoint's `port` is published on host_ip at a port docker
  /// picks; host: the container shares the host's network and listens on a
  /// port from `port_range`, given in $PORT.
  Network network = Network::kBridge;
  /// Where published ports are bound (bridge) and the address nginx uses.
  std::string host_ip = "127.0.0.1";
  /// Host-mode ports.
  PortRange port_range{20000, 29999};
  /// The grace Stop uses when it is passed a negative one.
  Duration stop_grace{10000};
  /// If set, Stop and Inspect act only on containers labelled with this
  /// manager (List always filters by the manager it is given).
  std::string manager;
  /// For messages: where dockerd is.
  std::string socket = "/var/run/docker.sock";
};

/// Thread-safe. Owns its DockerApi and its worker threads; the destructor
/// cancels pulls in progress and joins the workers (bounded by the API's
/// request timeouts).
class DockerCloud : public Cloud {
 public:
  /// `events` and `clock` must outlive this object. REQUIRES: api non-null.
  DockerCloud(DockerCloudSettings settings, std::unique_ptr<DockerApi> api, EventSink& events, Clock& clock);
  ~DockerCloud() override;

  DockerCloud(const DockerCloud&) = delete;
  DockerCloud& operator=(const DockerCloud&) = delete;

  const char* Name() const override { return "docker"; }

  /// REQUIRES: req.endpoint non-null with a docker image. InvalidArgument for
  /// a bad instance id, image reference or command; Conflict if the id is
  /// already launched here or a container of that name exists; Unavailable
  /// when dockerd cannot be reached, or (host mode) no port is free.
  /// Returns at once with pending=true; see the file comment.
  Result<InstanceInfo> Launch(const LaunchRequest& req) override;
  /// Stops the container (its stop signal, SIGKILL after `grace`; negative
  /// = settings' stop_grace), then removes it. A launch still in the
  /// background is cancelled (a container it creates is removed). OK if
  /// there is nothing to stop. Unavailable when dockerd cannot be reached.
  Status Stop(const std::string& instance_id, Duration grace) override;
  /// Containers labelled reactor.managed=1 and reactor.manager=`manager`,
  /// plus launches of `manager` still in the background or failed there.
  /// Unavailable when dockerd cannot be reached.
  Result<std::vector<InstanceInfo>> List(const std::string& manager) override;
  /// NotFound when there is neither a launch in progress nor a container.
  Result<InstanceInfo> Inspect(const std::string& instance_id) override;

  /// The container name of an instance: "reactor-<instance_id>".
  static std::string ContainerName(const std::string& instance_id) { return "reactor-" + instance_id; }

 private:
  /// A launch whose container is not (yet) running under docker's eyes.
  struct PendingLaunch {
    std::string instance_id;
    std::string endpoint;
    std::string manager;
    std::string image;
    std::string address;  // known up front in host mode
    int host_port = 0;    // host mode: reserved until the launch ends
    bool pull = false;    // the image was missing at launch
    std::string detail;   // "pulling image X", "starting container", or why it failed
    bool failed = false;
    bool cancelled = false;  // Stop was called; the worker cleans up
    bool done = false;       // the worker returned; its thread can be joined
    std::thread worker;
  };

  /// One pull of an image shared by every launch that needs it.
  struct PullState {
    bool done = false;
    Status status;
  };

  void RunLaunch(std::string instance_id, ContainerSpec spec);
  /// Pulls `image` or waits for the pull already under way. Returns early,
  /// with Unavailable, when the launch is stopped or on shutdown.
  Status PullShared(const std::string& image, const std::string& instance_id);
  /// Marks the launch failed (records an event). REQUIRES: mu_ not held.
  void FailLaunch(const std::string& instance_id, const std::string& why);
  /// Joins workers that have returned. REQUIRES: mu_ held.
  void ReapWorkers();
  /// True once Stop was called for a launch still here. REQUIRES: mu_ held.
  bool StopRequested(const std::string& instance_id);
  /// Host mode: a port in the range that no reactor container, pending
  /// launch or listening socket uses and that binds now. REQUIRES: mu_ held.
  Result<int> PickPort(const std::vector<ContainerSummary>& containers);
  InstanceInfo PendingInfo(const PendingLaunch& p) const;
  /// Info from a container's summary; inspects stopped ones for how they ended.
  InstanceInfo ContainerInfo(const ContainerSummary& c);
  bool OwnedByUs(const std::map<std::string, std::string>& labels, const std::string& instance_id) const;

  // Constant after construction.
  const DockerCloudSettings settings_;
  const std::unique_ptr<DockerApi> api_;
  EventSink& events_;
  Clock& clock_;

  std::mutex mu_;
  std::condition_variable cv_;  // a pull finished, or a launch was cancelled, or shutdown
  std::map<std::string, std::unique_ptr<PendingLaunch>> pending_;  // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<PullState>> pulls_;        // GUARDED_BY(mu_): image → pull under way
  std::set<std::string> known_;   // GUARDED_BY(mu_): instances launched or already adopted here
  std::set<std::string> exited_;  // GUARDED_BY(mu_): container ids whose end was recorded
  int next_port_;                 // GUARDED_BY(mu_): the rotating scan cursor
  bool shutting_down_ = false;    // GUARDED_BY(mu_)
  std::atomic<bool> cancel_pulls_{false};
};

/// The agent's docker cloud for [cloud:docker]: a DockerClient on
/// `config.socket`, the settings from `config`, stops and inspects limited
/// to `manager`.
std::unique_ptr<DockerCloud> MakeDockerCloud(const AgentConfig::DockerCloud& config, const std::string& manager,
                                             EventSink& events, Clock& clock);

}  // namespace reactor
