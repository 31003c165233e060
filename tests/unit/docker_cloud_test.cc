// DockerCloud against an in-memory Docker API: what goes into the create
// request, pending launches while an image is pulled, failures with
// docker's message, adoption by labels, foreign containers left alone.
#include "agent/cloud/docker_cloud.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_clock.h"
#include "fake_event_sink.h"

namespace reactor {
namespace {

using json = nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

/// A Docker Engine in memory. Thread-safe. Pulls can be held at a gate.
class FakeDockerApi : public DockerApi {
 public:
  struct Container {
    ContainerSpec spec;
    ContainerState state;
  };

  // --- test controls ---
  void AddImage(const std::string& ref) {
    std::lock_guard<std::mutex> lock(mu_);
    images_.insert(ref);
  }
  void SetDown(bool down) {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = down;
  }
  /// Pulls wait until OpenPullGate (or their cancel flag).
  void HoldPulls() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_open_ = false;
  }
  void OpenPullGate() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gate_open_ = true;
    }
    cv_.notify_all();
  }
  /// What the next pulls return (OK = the image appears).
  void SetPullResult(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    pull_result_ = std::move(st);
  }
  /// Whether started bridge containers get their port published (not with
  /// dockerd --bridge=none).
  void SetPublishPorts(bool publish) {
    std::lock_guard<std::mutex> lock(mu_);
    publish_ports_ = publish;
  }
  void SetStartError(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    start_error_ = std::move(st);
  }
  /// Puts a container in as if someone else (or an earlier agent) made it.
  std::string AddContainer(const std::string& name, std::map<std::string, std::string> labels,
                           const std::string& status, int exit_code = 0, const std::string& error = "") {
    std::lock_guard<std::mutex> lock(mu_);
    Container c;
    c.spec.name = name;
    c.spec.labels = labels;
    c.state.id = NewId();
    c.state.name = name;
    c.state.labels = std::move(labels);
    c.state.status = status;
    c.state.running = status == "running";
    c.state.exit_code = exit_code;
    c.state.error = error;
    containers_[c.state.id] = c;
    return c.state.id;
  }
  /// Makes a running container exit.
  void Exit(const std::string& name, int code, bool oom = false) {
    std::lock_guard<std::mutex> lock(mu_);
    Container* c = Find(name);
    ASSERT_NE(c, nullptr);
    c->state.running = false;
    c->state.status = "exited";
    c->state.exit_code = code;
    c->state.oom_killed = oom;
  }
  std::map<std::string, Container> Containers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return containers_;
  }
  std::vector<ContainerSpec> Created() const {
    std::lock_guard<std::mutex> lock(mu_);
    return created_;
  }
  int pulls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pulls_;
  }
  std::vector<std::string> Calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  // --- DockerApi ---
  Result<bool> ImageExists(const std::string& ref) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("ImageExists"));
    return images_.count(ref) > 0;
  }
  Status Pull(const std::string& ref, const std::atomic<bool>* cancel) override {
    std::unique_lock<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("Pull"));
    ++pulls_;
    while (!gate_open_) {
      if (cancel != nullptr && cancel->load()) return Status::Unavailable("pull " + ref + ": cancelled");
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
    if (pull_result_.ok()) images_.insert(ref);
    return pull_result_;
  }
  Result<std::string> CreateContainer(const ContainerSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("CreateContainer"));
    if (images_.count(spec.image) == 0) return Status::NotFound("No such image: " + spec.image);
    if (Find(spec.name) != nullptr) {
      return Status::Conflict("Conflict. The container name \"/" + spec.name + "\" is already in use");
    }
    created_.push_back(spec);
    Container c;
    c.spec = spec;
    c.state.id = NewId();
    c.state.name = spec.name;
    c.state.labels = spec.labels;
    c.state.status = "created";
    containers_[c.state.id] = c;
    return c.state.id;
  }
  Status Start(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("Start"));
    Container* c = Find(id);
    if (c == nullptr) return Status::NotFound("No such container: " + id);
    if (!start_error_.ok()) {
      c->state.error = start_error_.message();
      c->state.exit_code = 128;
      return start_error_;
    }
    c->state.running = true;
    c->state.status = "running";
    if (c->spec.publish_port > 0 && publish_ports_) {
      c->state.ports = {{c->spec.publish_port, c->spec.host_ip, next_host_port_++}};
    }
    return Status::Ok();
  }
  Result<ContainerState> Inspect(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("Inspect"));
    Container* c = Find(id);
    if (c == nullptr) return Status::NotFound("No such container: " + id);
    return c->state;
  }
  Status Stop(const std::string& id, Duration) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("Stop " + id));
    Container* c = Find(id);
    if (c == nullptr) return Status::NotFound("No such container: " + id);
    c->state.running = false;
    c->state.status = "exited";
    c->state.exit_code = 143;
    return Status::Ok();
  }
  Status Kill(const std::string& id, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("Kill " + id));
    Container* c = Find(id);
    if (c == nullptr) return Status::NotFound("No such container: " + id);
    if (!c->state.running) return Status::Conflict("Container " + id + " is not running");
    c->state.running = false;
    c->state.status = "exited";
    c->state.exit_code = 137;
    return Status::Ok();
  }
  Status Remove(const std::string& id, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("Remove " + id));
    Container* c = Find(id);
    if (c == nullptr) return Status::NotFound("No such container: " + id);
    containers_.erase(c->state.id);
    return Status::Ok();
  }
  Result<std::vector<ContainerSummary>> List(const std::map<std::string, std::string>& labels, bool all) override {
    std::lock_guard<std::mutex> lock(mu_);
    REACTOR_RETURN_IF_ERROR(Reachable("List"));
    std::vector<ContainerSummary> out;
    for (const auto& [id, c] : containers_) {
      if (!all && !c.state.running) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = c.state.labels.find(k);
        if (it == c.state.labels.end() || (!v.empty() && it->second != v)) match = false;
      }
      if (!match) continue;
      ContainerSummary s;
      s.id = id;
      s.name = c.state.name;
      s.labels = c.state.labels;
      s.state = c.state.status;
      s.ports = c.state.ports;
      out.push_back(s);
    }
    return out;
  }

 private:
  Status Reachable(const std::string& call) {
    calls_.push_back(call);
    if (down_) return Status::Unavailable("cannot reach docker at /run/fake.sock: connection refused");
    return Status::Ok();
  }
  Container* Find(const std::string& id_or_name) {
    for (auto& [id, c] : containers_) {
      if (id == id_or_name || c.state.name == id_or_name) return &c;
    }
    return nullptr;
  }
  std::string NewId() {
    char buf[65];
    std::snprintf(buf, sizeof(buf), "%064d", ++next_id_);
    return std::string("c") + (buf + 1);
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> images_;
  std::map<std::string, Container> containers_;
  std::vector<ContainerSpec> created_;
  std::vector<std::string> calls_;
  bool down_ = false;
  bool gate_open_ = true;
  bool publish_ports_ = true;
  Status pull_result_;
  Status start_error_;
  int pulls_ = 0;
  int next_id_ = 0;
  int next_host_port_ = 49153;
};

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

EndpointConfig WebEndpoint(const std::string& name = "web") {
  EndpointConfig ep;
  ep.name = name;
  ep.cloud = CloudKind::kDocker;
  ep.port = 8000;
  ep.docker.image = "myapp:1";
  ep.docker.command = "/bin/app --port ${PORT} --name '${NAME} of ${ENDPOINT}'";
  ep.docker.environment = {{"GREETING", "hello ${NAME}"}, {"PORT", "1"}};
  ep.docker.user = "1000:1000";
  ep.docker.mem_limit = 64ull << 20;
  ep.docker.dns = {"10.0.0.53", "10.0.0.54"};
  ep.docker.hostname = "web-host";
  ep.docker.slots = 7;
  return ep;
}

/// What a DockerCloud owns: a view of the test's engine, so that a second
/// DockerCloud (an agent restart) sees the same containers.
class ForwardingDockerApi : public DockerApi {
 public:
  explicit ForwardingDockerApi(DockerApi* engine) : engine_(engine) {}
  Result<bool> ImageExists(const std::string& ref) override { return engine_->ImageExists(ref); }
  Status Pull(const std::string& ref, const std::atomic<bool>* cancel) override { return engine_->Pull(ref, cancel); }
  Result<std::string> CreateContainer(const ContainerSpec& spec) override { return engine_->CreateContainer(spec); }
  Status Start(const std::string& id) override { return engine_->Start(id); }
  Result<ContainerState> Inspect(const std::string& id) override { return engine_->Inspect(id); }
  Status Stop(const std::string& id, Duration grace) override { return engine_->Stop(id, grace); }
  Status Kill(const std::string& id, const std::string& signal) override { return engine_->Kill(id, signal); }
  Status Remove(const std::string& id, bool force) override { return engine_->Remove(id, force); }
  Result<std::vector<ContainerSummary>> List(const std::map<std::string, std::string>& labels, bool all) override {
    return engine_->List(labels, all);
  }

 private:
  DockerApi* engine_;
};

class DockerCloudTest : public ::testing::Test {
 protected:
  DockerCloudTest() { Make(DockerCloudSettings{}); }
  ~DockerCloudTest() override { cloud_.reset(); }

  /// A new DockerCloud over the same engine: what an agent restart looks like.
  void Make(DockerCloudSettings settings) {
    cloud_.reset();
    if (settings.manager.empty()) settings.manager = "m1";
    cloud_ = std::make_unique<DockerCloud>(settings, std::make_unique<ForwardingDockerApi>(&engine_), events_, clock_);
  }

  LaunchRequest Request(const std::string& id, const EndpointConfig& ep, const std::string& manager = "m1") {
    LaunchRequest req;
    req.instance_id = id;
    req.manager = manager;
    req.endpoint = &ep;
    return req;
  }

  std::vector<InstanceInfo> ListOrDie(const std::string& manager = "m1") {
    auto list = cloud_->List(manager);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? *list : std::vector<InstanceInfo>{};
  }

  /// The instance in List, or one with an empty id.
  InstanceInfo Listed(const std::string& id, const std::string& manager = "m1") {
    for (const InstanceInfo& i : ListOrDie(manager)) {
      if (i.instance_id == id) return i;
    }
    return InstanceInfo{};
  }

  bool WaitRunning(const std::string& id) {
    return WaitFor([&] { return Listed(id).running; });
  }

  FakeClock clock_;
  FakeEventSink events_;
  FakeDockerApi engine_;
  FakeDockerApi* api_ = &engine_;
  std::unique_ptr<DockerCloud> cloud_;
};

TEST_F(DockerCloudTest, BridgeLaunchMapsEndpointIntoCreateRequest) {
  api_->AddImage("myapp:1");
  const EndpointConfig ep = WebEndpoint();
  auto info = cloud_->Launch(Request("web-1", ep));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->pending);
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->endpoint, "web");
  ASSERT_TRUE(WaitRunning("web-1"));

  ASSERT_EQ(api_->Created().size(), 1u);
  const ContainerSpec spec = api_->Created()[0];
  EXPECT_EQ(spec.name, "reactor-web-1");
  const json body = ContainerCreateBody(spec);
  EXPECT_EQ(body["Image"], "myapp:1");
  EXPECT_EQ(body["Cmd"], json({"/bin/app", "--port", "8000", "--name", "web-1 of web"}));
  const auto env = body["Env"].get<std::vector<std::string>>();
  EXPECT_THAT(env, Contains("GREETING=hello web-1"));
  EXPECT_THAT(env, Contains("PORT=8000"));  // the app's port inside the container, ours over the user's
  EXPECT_THAT(env, Not(Contains("PORT=1")));
  EXPECT_THAT(env, Contains("NAME=web-1"));
  EXPECT_THAT(env, Contains("ENDPOINT=web"));
  EXPECT_EQ(body["User"], "1000:1000");
  EXPECT_EQ(body["Hostname"], "web-host");
  EXPECT_EQ(body["Labels"], json({{"reactor.managed", "1"},
                                  {"reactor.manager", "m1"},
                                  {"reactor.endpoint", "web"},
                                  {"reactor.instance", "web-1"},
                                  {"reactor.slots", "7"},
                                  {"reactor.network", "bridge"},
                                  {"reactor.port", "8000"}}));
  EXPECT_EQ(body["ExposedPorts"], json({{"8000/tcp", json::object()}}));
  const json& host = body["HostConfig"];
  EXPECT_EQ(host["NetworkMode"], "bridge");
  EXPECT_EQ(host["Memory"], 64ull << 20);
  EXPECT_EQ(host["Dns"], json({"10.0.0.53", "10.0.0.54"}));
  EXPECT_EQ(host["PortBindings"], json({{"8000/tcp", json::array({{{"HostIp", "127.0.0.1"}, {"HostPort", ""}}})}}));
  EXPECT_EQ(host["RestartPolicy"]["Name"], "no");

  // The host port docker picked, read back from the container.
  const InstanceInfo listed = Listed("web-1");
  EXPECT_EQ(listed.address, "127.0.0.1:49153");
  EXPECT_FALSE(listed.pending);
  EXPECT_EQ(events_.Count("launch"), 2);  // launching, started
  auto inspected = cloud_->Inspect("web-1");
  ASSERT_TRUE(inspected.ok()) << inspected.status().ToString();
  EXPECT_TRUE(inspected->running);
  EXPECT_EQ(inspected->address, "127.0.0.1:49153");
}

TEST_F(DockerCloudTest, CreateBodyLeavesOutWhatIsNotSet) {
  ContainerSpec spec;
  spec.name = "reactor-x";
  spec.image = "busybox";
  spec.network_mode = "host";
  const json body = ContainerCreateBody(spec);
  EXPECT_FALSE(body.contains("Cmd"));  // the image's default command
  EXPECT_FALSE(body.contains("User"));
  EXPECT_FALSE(body.contains("Hostname"));
  EXPECT_FALSE(body.contains("ExposedPorts"));
  EXPECT_FALSE(body["HostConfig"].contains("Memory"));
  EXPECT_FALSE(body["HostConfig"].contains("Dns"));
  EXPECT_FALSE(body["HostConfig"].contains("PortBindings"));
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "host");
}

TEST_F(DockerCloudTest, HostModeGivesEachContainerItsOwnPortFromTheRange) {
  DockerCloudSettings s;
  s.network = DockerCloudSettings::Network::kHost;
  s.port_range = {41700, 41799};
  Make(s);
  api_->AddImage("myapp:1");
  EndpointConfig ep = WebEndpoint();
  auto a = cloud_->Launch(Request("web-1", ep));
  auto b = cloud_->Launch(Request("web-2", ep));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  // Known up front in host mode.
  EXPECT_THAT(a->address, HasSubstr("127.0.0.1:417"));
  EXPECT_THAT(b->address, HasSubstr("127.0.0.1:417"));
  EXPECT_NE(a->address, b->address);
  ASSERT_TRUE(WaitRunning("web-1"));
  ASSERT_TRUE(WaitRunning("web-2"));

  for (const ContainerSpec& spec : api_->Created()) {
    const json body = ContainerCreateBody(spec);
    const std::string port = spec.labels.at("reactor.port");
    EXPECT_EQ(body["HostConfig"]["NetworkMode"], "host");
    EXPECT_FALSE(body.contains("ExposedPorts"));
    EXPECT_THAT(body["Env"].get<std::vector<std::string>>(), Contains("PORT=" + port));
    EXPECT_EQ(body["Cmd"][2], port);
    EXPECT_EQ(spec.labels.at("reactor.network"), "host");
    EXPECT_EQ(spec.labels.at("reactor.address"), "127.0.0.1:" + port);
    EXPECT_GE(std::stoi(port), 41700);
    EXPECT_LE(std::stoi(port), 41799);
  }
  EXPECT_EQ(Listed("web-1").address, a->address);

  // A restarted agent finds both and does not hand out a port they hold.
  Make(s);
  EXPECT_EQ(ListOrDie().size(), 2u);
  auto c = cloud_->Launch(Request("web-3", ep));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_NE(c->address, a->address);
  EXPECT_NE(c->address, b->address);
}

TEST_F(DockerCloudTest, PendingWhileThePullRunsThenRunning) {
  api_->HoldPulls();
  const EndpointConfig ep = WebEndpoint();
  auto info = cloud_->Launch(Request("web-1", ep));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->pending);
  EXPECT_EQ(info->detail, "pulling image myapp:1");

  ASSERT_TRUE(WaitFor([&] { return api_->pulls() == 1; }));
  const InstanceInfo listed = Listed("web-1");
  EXPECT_TRUE(listed.pending);
  EXPECT_FALSE(listed.running);
  EXPECT_EQ(listed.detail, "pulling image myapp:1");
  auto inspected = cloud_->Inspect("web-1");
  ASSERT_TRUE(inspected.ok());
  EXPECT_TRUE(inspected->pending);

  api_->OpenPullGate();
  ASSERT_TRUE(WaitRunning("web-1"));
  EXPECT_FALSE(Listed("web-1").pending);
}

TEST_F(DockerCloudTest, LaunchesOfOneImageShareOnePull) {
  api_->HoldPulls();
  const EndpointConfig ep = WebEndpoint();
  for (const char* id : {"web-1", "web-2", "web-3"}) ASSERT_TRUE(cloud_->Launch(Request(id, ep)).ok());
  ASSERT_TRUE(WaitFor([&] { return api_->pulls() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(api_->pulls(), 1);
  api_->OpenPullGate();
  for (const char* id : {"web-1", "web-2", "web-3"}) EXPECT_TRUE(WaitRunning(id)) << id;
  EXPECT_EQ(api_->pulls(), 1);
}

TEST_F(DockerCloudTest, FailedPullShowsDockersMessageUntilStopped) {
  const std::string message =
      "pull access denied for nosuch/app, repository does not exist or may require 'docker login'";
  api_->SetPullResult(Status::Unavailable(message));
  EndpointConfig ep = WebEndpoint();
  ep.docker.image = "nosuch/app:2";
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());

  ASSERT_TRUE(WaitFor([&] { return !Listed("web-1").pending; }));
  const InstanceInfo failed = Listed("web-1");
  EXPECT_EQ(failed.instance_id, "web-1");
  EXPECT_FALSE(failed.running);
  EXPECT_EQ(failed.exit_code, -1);
  EXPECT_THAT(failed.detail, HasSubstr("nosuch/app:2"));
  EXPECT_THAT(failed.detail, HasSubstr(message));
  EXPECT_EQ(events_.Count("error"), 1);
  EXPECT_TRUE(api_->Created().empty());

  // Still listed on the next rounds, until the agent stops it.
  EXPECT_FALSE(Listed("web-1").instance_id.empty());
  ASSERT_TRUE(cloud_->Stop("web-1", Duration(1000)).ok());
  EXPECT_TRUE(ListOrDie().empty());
  EXPECT_TRUE(cloud_->Inspect("web-1").status().IsNotFound());
}

TEST_F(DockerCloudTest, FailedStartShowsDockersMessageAndLeavesNoContainer) {
  api_->AddImage("myapp:1");
  api_->SetStartError(Status::Unavailable("unable to find user app: no matching entries in passwd file"));
  const EndpointConfig ep = WebEndpoint();
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  ASSERT_TRUE(WaitFor([&] { return !Listed("web-1").pending; }));
  const InstanceInfo failed = Listed("web-1");
  EXPECT_FALSE(failed.running);
  EXPECT_THAT(failed.detail, HasSubstr("unable to find user app"));
  EXPECT_TRUE(api_->Containers().empty());
  EXPECT_EQ(ListOrDie().size(), 1u);
}

TEST_F(DockerCloudTest, BridgeContainerWithoutAPublishedPortFails) {
  api_->AddImage("myapp:1");
  api_->SetPublishPorts(false);
  const EndpointConfig ep = WebEndpoint();
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  ASSERT_TRUE(WaitFor([&] { return !Listed("web-1").pending; }));
  const InstanceInfo failed = Listed("web-1");
  EXPECT_FALSE(failed.running);
  EXPECT_THAT(failed.detail, HasSubstr("published no host port for 8000/tcp"));
  EXPECT_THAT(failed.detail, HasSubstr("network = host"));
  EXPECT_TRUE(api_->Containers().empty());
}

TEST_F(DockerCloudTest, StopDuringThePullCancelsTheLaunch) {
  api_->HoldPulls();
  const EndpointConfig ep = WebEndpoint();
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  ASSERT_TRUE(WaitFor([&] { return api_->pulls() == 1; }));
  ASSERT_TRUE(cloud_->Stop("web-1", Duration(1000)).ok());
  EXPECT_TRUE(ListOrDie().empty());
  api_->OpenPullGate();
  // The pull completes (the image is useful), but nothing is created.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(ListOrDie().empty());
  EXPECT_TRUE(api_->Containers().empty());
  // The id can be used again.
  ASSERT_TRUE(WaitFor([&] { return cloud_->Launch(Request("web-1", ep)).ok(); }));
  EXPECT_TRUE(WaitRunning("web-1"));
}

TEST_F(DockerCloudTest, ShutdownDuringAPullDoesNotWaitForIt) {
  api_->HoldPulls();
  const EndpointConfig ep = WebEndpoint();
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  ASSERT_TRUE(WaitFor([&] { return api_->pulls() == 1; }));
  const auto begin = std::chrono::steady_clock::now();
  cloud_.reset();  // the fake's pull returns when its cancel flag is set
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
}

TEST_F(DockerCloudTest, StopStopsAndRemovesTheContainer) {
  api_->AddImage("myapp:1");
  const EndpointConfig ep = WebEndpoint();
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  ASSERT_TRUE(WaitRunning("web-1"));
  ASSERT_TRUE(cloud_->Stop("web-1", Duration(2000)).ok());
  EXPECT_TRUE(api_->Containers().empty());
  EXPECT_TRUE(ListOrDie().empty());
  EXPECT_EQ(events_.Count("stop"), 1);
  // Already gone: still OK.
  EXPECT_TRUE(cloud_->Stop("web-1", Duration(2000)).ok());
  EXPECT_TRUE(cloud_->Stop("never-was", Duration(2000)).ok());
}

std::map<std::string, std::string> Labels(const std::string& manager, const std::string& id,
                                          const std::string& endpoint = "web") {
  return {{"reactor.managed", "1"},       {"reactor.manager", manager},
          {"reactor.endpoint", endpoint}, {"reactor.instance", id},
          {"reactor.slots", "10"},        {"reactor.network", "host"},
          {"reactor.port", "20001"},      {"reactor.address", "127.0.0.1:20001"}};
}

TEST_F(DockerCloudTest, AdoptsItsManagersContainersAndIgnoresOthers) {
  api_->AddContainer("reactor-web-1", Labels("m1", "web-1"), "running");
  api_->AddContainer("reactor-web-2", Labels("m2", "web-2"), "running");
  api_->AddContainer("reactor-web-3", {}, "running");  // not ours, whatever its name says
  api_->AddContainer("postgres", {{"com.example", "db"}}, "running");

  const auto list = ListOrDie("m1");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].instance_id, "web-1");
  EXPECT_EQ(list[0].endpoint, "web");
  EXPECT_TRUE(list[0].running);
  EXPECT_EQ(list[0].address, "127.0.0.1:20001");
  EXPECT_EQ(events_.Count("adopt"), 1);
  ListOrDie("m1");
  EXPECT_EQ(events_.Count("adopt"), 1);  // once

  // Stop of what is not ours touches nothing.
  EXPECT_TRUE(cloud_->Stop("web-2", Duration(1000)).IsConflict());
  EXPECT_TRUE(cloud_->Stop("web-3", Duration(1000)).IsConflict());
  EXPECT_TRUE(cloud_->Inspect("web-2").status().IsNotFound());
  EXPECT_TRUE(cloud_->Inspect("web-3").status().IsNotFound());
  EXPECT_EQ(api_->Containers().size(), 4u);
  for (const std::string& call : api_->Calls()) {
    EXPECT_THAT(call, Not(HasSubstr("Stop "))) << call;
    EXPECT_THAT(call, Not(HasSubstr("Remove "))) << call;
  }
  // A launch under a name that is taken is refused at once.
  api_->AddImage("myapp:1");
  const EndpointConfig ep = WebEndpoint();
  EXPECT_TRUE(cloud_->Launch(Request("web-3", ep)).status().IsConflict());
}

TEST_F(DockerCloudTest, ExitedContainersReportHowTheyEnded) {
  api_->AddImage("myapp:1");
  api_->AddContainer("reactor-a", Labels("m1", "a"), "exited", 3);
  api_->AddContainer("reactor-b", Labels("m1", "b"), "exited", 128, "OCI runtime create failed: no such file");
  api_->AddContainer("reactor-c", Labels("m1", "c"), "created");
  const EndpointConfig ep = WebEndpoint();
  ASSERT_TRUE(cloud_->Launch(Request("d", ep)).ok());
  ASSERT_TRUE(WaitRunning("d"));
  api_->Exit("reactor-d", 137, /*oom=*/true);

  std::map<std::string, InstanceInfo> by_id;
  for (const InstanceInfo& i : ListOrDie()) by_id[i.instance_id] = i;
  ASSERT_EQ(by_id.size(), 4u);
  EXPECT_FALSE(by_id["a"].running);
  EXPECT_EQ(by_id["a"].exit_code, 3);
  EXPECT_EQ(by_id["a"].detail, "exited with code 3");
  EXPECT_EQ(by_id["b"].exit_code, 128);
  EXPECT_EQ(by_id["b"].detail, "OCI runtime create failed: no such file");
  EXPECT_FALSE(by_id["c"].running);
  EXPECT_FALSE(by_id["c"].pending);
  EXPECT_THAT(by_id["c"].detail, HasSubstr("never started"));
  EXPECT_EQ(by_id["d"].exit_code, 137);
  EXPECT_THAT(by_id["d"].detail, HasSubstr("mem_limit"));
  EXPECT_EQ(events_.Count("exit"), 4);
  ListOrDie();
  EXPECT_EQ(events_.Count("exit"), 4);  // once each
}

TEST_F(DockerCloudTest, DockerDownIsUnavailable) {
  api_->AddImage("myapp:1");
  api_->SetDown(true);
  const EndpointConfig ep = WebEndpoint();
  auto launched = cloud_->Launch(Request("web-1", ep));
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(launched.status().message(), HasSubstr("cannot reach docker"));
  auto listed = cloud_->List("m1");
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(cloud_->Stop("web-1", Duration(1000)).code(), Status::Code::kUnavailable);
  EXPECT_TRUE(api_->Created().empty());

  api_->SetDown(false);  // back: launches work again
  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  EXPECT_TRUE(WaitRunning("web-1"));
}

TEST_F(DockerCloudTest, RefusesBadInput) {
  api_->AddImage("myapp:1");
  EndpointConfig ep = WebEndpoint();
  EXPECT_TRUE(cloud_->Launch(Request("Bad_Id", ep)).status().IsInvalidArgument());
  EndpointConfig bad_image = ep;
  bad_image.docker.image = "my app";
  EXPECT_TRUE(cloud_->Launch(Request("web-1", bad_image)).status().IsInvalidArgument());
  EndpointConfig bad_command = ep;
  bad_command.docker.command = "/bin/app 'unterminated";
  EXPECT_TRUE(cloud_->Launch(Request("web-1", bad_command)).status().IsInvalidArgument());
  LaunchRequest none;
  none.instance_id = "web-1";
  EXPECT_TRUE(cloud_->Launch(none).status().IsInvalidArgument());
  EXPECT_TRUE(api_->Created().empty());

  ASSERT_TRUE(cloud_->Launch(Request("web-1", ep)).ok());
  EXPECT_TRUE(cloud_->Launch(Request("web-1", ep)).status().IsConflict());
}

TEST(DockerImageReference, SplitsForPull) {
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(SplitImageReference("busybox"), P("busybox", "latest"));
  EXPECT_EQ(SplitImageReference("busybox:1.36"), P("busybox", "1.36"));
  EXPECT_EQ(SplitImageReference("registry:5000/team/app"), P("registry:5000/team/app", "latest"));
  EXPECT_EQ(SplitImageReference("registry:5000/team/app:2"), P("registry:5000/team/app", "2"));
  EXPECT_EQ(SplitImageReference("app@sha256:abc"), P("app@sha256:abc", ""));
  EXPECT_TRUE(ValidImageReference("registry:5000/team/app:2"));
  EXPECT_FALSE(ValidImageReference(""));
  EXPECT_FALSE(ValidImageReference("-rm"));
  EXPECT_FALSE(ValidImageReference("app?x=1"));
  EXPECT_FALSE(ValidImageReference("app/../x y"));
}

}  // namespace
}  // namespace reactor
