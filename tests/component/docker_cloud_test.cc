// DockerCloud against a real, private dockerd that the test starts itself
// (dockerd_fixture.h): host-network containers from a busybox-static image,
// HTTP on loopback, adoption by a second DockerCloud, exits, stops, a pull
// that cannot succeed, foreign containers left alone. Every wait is bounded.
#include "agent/cloud/docker_cloud.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dockerd_fixture.h"
#include "fake_event_sink.h"

namespace reactor {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;

constexpr char kImage[] = "reactor-test:1";

bool WaitFor(const std::function<bool()>& cond, milliseconds limit) {
  const auto deadline = steady_clock::now() + limit;
  while (steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return cond();
}

/// GETs `path` from "127.0.0.1:port" and returns the whole response, or ""
/// if nothing answers within a second.
std::string HttpGet(const std::string& address, const std::string& path = "/") {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || address.substr(0, colon) != "127.0.0.1") return "";
  const int port = std::atoi(address.c_str() + colon + 1);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[1024];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

class DockerCloudComponent : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dockerd_ = new DockerdFixture();
    start_error_ = dockerd_->Start();
    if (start_error_.empty()) start_error_ = dockerd_->ImportBusyboxImage("reactor-test", "1");
  }

  static void TearDownTestSuite() {
    delete dockerd_;  // removes containers, stops dockerd, removes its dirs
    dockerd_ = nullptr;
  }

  void SetUp() override {
    // Never skip: a dockerd that cannot run here is a failure to look at.
    ASSERT_TRUE(start_error_.empty()) << "private dockerd unavailable: " << start_error_;
    const int base = 42000 + static_cast<int>(::getpid() % 100) * 50;
    settings_.network = DockerCloudSettings::Network::kHost;
    settings_.host_ip = "127.0.0.1";
    settings_.port_range = {base, base + 49};
    settings_.stop_grace = milliseconds(2000);
    settings_.manager = manager_;
    settings_.socket = dockerd_->socket();
    cloud_ = NewCloud();
  }

  void TearDown() override {
    cloud_.reset();
    if (dockerd_ == nullptr || !start_error_.empty()) return;
    // Leave nothing behind for the next test.
    auto all = dockerd_->client().List({}, /*all=*/true);
    if (all.ok()) {
      for (const ContainerSummary& c : *all) dockerd_->client().Remove(c.id, /*force=*/true);
    }
  }

  std::unique_ptr<DockerCloud> NewCloud(const std::string& socket = "",
                                        milliseconds request_timeout = milliseconds(30000)) {
    DockerClientSettings cs;
    cs.socket = socket.empty() ? dockerd_->socket() : socket;
    cs.request_timeout = request_timeout;
    cs.pull_timeout = milliseconds(60000);
    return std::make_unique<DockerCloud>(settings_, std::make_unique<DockerClient>(cs), events_, SystemClock::Get());
  }

  EndpointConfig HttpdEndpoint(const std::string& name = "web") {
    EndpointConfig ep;
    ep.name = name;
    ep.cloud = CloudKind::kDocker;
    ep.docker.image = kImage;
    // PORT, NAME and a user variable reach the container's environment;
    // ${PORT} expands in the command.
    ep.docker.command =
        "/bin/sh -c 'echo \"$NAME $GREETING\" > /www/id.html && exec httpd -f -p 127.0.0.1:${PORT} -h /www'";
    ep.docker.environment = {{"GREETING", "hi from ${ENDPOINT}"}};
    ep.docker.mem_limit = 64ull << 20;
    return ep;
  }

  LaunchRequest Request(const std::string& id, const EndpointConfig& ep) {
    LaunchRequest req;
    req.instance_id = id;
    req.manager = manager_;
    req.endpoint = &ep;
    return req;
  }

  InstanceInfo Listed(DockerCloud& cloud, const std::string& id) {
    auto list = cloud.List(manager_);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    if (list.ok()) {
      for (const InstanceInfo& i : *list) {
        if (i.instance_id == id) return i;
      }
    }
    return InstanceInfo{};
  }

  /// Launches `id` and waits until List shows it running and it answers HTTP.
  InstanceInfo LaunchServing(const std::string& id, const EndpointConfig& ep) {
    auto info = cloud_->Launch(Request(id, ep));
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    if (!info.ok()) return InstanceInfo{};
    EXPECT_TRUE(info->pending);
    InstanceInfo listed;
    EXPECT_TRUE(WaitFor(
        [&] {
          listed = Listed(*cloud_, id);
          return listed.running || (!listed.pending && !listed.instance_id.empty());
        },
        seconds(30)))
        << "instance " << id << " never left pending";
    EXPECT_TRUE(listed.running) << listed.detail << "\ndockerd log:\n" << dockerd_->LogTail(1500);
    EXPECT_EQ(listed.address, info->address);
    EXPECT_TRUE(WaitFor([&] { return HttpGet(listed.address).find(" 200 ") != std::string::npos; }, seconds(10)))
        << "nothing serves HTTP on " << listed.address;
    return listed;
  }

  static DockerdFixture* dockerd_;
  static std::string start_error_;
  const std::string manager_ = "host-a";
  DockerCloudSettings settings_;
  FakeEventSink events_;
  std::unique_ptr<DockerCloud> cloud_;
};

DockerdFixture* DockerCloudComponent::dockerd_ = nullptr;
std::string DockerCloudComponent::start_error_;

TEST_F(DockerCloudComponent, LaunchedContainerServesHttpAndStopRemovesIt) {
  const EndpointConfig ep = HttpdEndpoint();
  const InstanceInfo info = LaunchServing("web-1", ep);
  ASSERT_TRUE(info.running);
  EXPECT_THAT(HttpGet(info.address, "/id.html"), HasSubstr("web-1 hi from web"));

  auto state = dockerd_->client().Inspect("reactor-web-1");
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->labels["reactor.managed"], "1");
  EXPECT_EQ(state->labels["reactor.manager"], manager_);
  EXPECT_EQ(state->labels["reactor.endpoint"], "web");
  EXPECT_EQ(state->labels["reactor.instance"], "web-1");
  EXPECT_EQ(state->labels["reactor.slots"], "10");

  const auto begin = steady_clock::now();
  ASSERT_TRUE(cloud_->Stop("web-1", milliseconds(2000)).ok());
  EXPECT_LT(steady_clock::now() - begin, seconds(15));
  EXPECT_TRUE(dockerd_->client().Inspect("reactor-web-1").status().IsNotFound());
  EXPECT_EQ(HttpGet(info.address), "");
  auto list = cloud_->List(manager_);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_TRUE(cloud_->Stop("web-1", milliseconds(2000)).ok());  // already gone
}

TEST_F(DockerCloudComponent, NewDockerCloudAdoptsRunningContainers) {
  const EndpointConfig ep = HttpdEndpoint();
  const InstanceInfo a = LaunchServing("web-1", ep);
  const InstanceInfo b = LaunchServing("web-2", ep);
  ASSERT_TRUE(a.running && b.running);
  EXPECT_NE(a.address, b.address);

  cloud_.reset();  // the agent goes away; the containers stay
  auto again = NewCloud();
  auto list = again->List(manager_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::map<std::string, InstanceInfo> by_id;
  for (const InstanceInfo& i : *list)
    EXPECT_TRUE(by_id.emplace(i.instance_id, i).second) << "duplicate " << i.instance_id;
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_TRUE(by_id["web-1"].running);
  EXPECT_EQ(by_id["web-1"].address, a.address);
  EXPECT_EQ(by_id["web-2"].address, b.address);
  EXPECT_EQ(events_.Count("adopt"), 2);

  // Another manager sees none of them.
  auto other = again->List("host-b");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());

  // A new launch on the restarted agent does not take their ports.
  cloud_ = std::move(again);
  const InstanceInfo c = LaunchServing("web-3", ep);
  EXPECT_NE(c.address, a.address);
  EXPECT_NE(c.address, b.address);
  for (const char* id : {"web-1", "web-2", "web-3"}) EXPECT_TRUE(cloud_->Stop(id, milliseconds(1000)).ok());
}

TEST_F(DockerCloudComponent, KilledContainerListsAsExited) {
  const EndpointConfig ep = HttpdEndpoint();
  ASSERT_TRUE(LaunchServing("web-1", ep).running);
  ASSERT_TRUE(dockerd_->client().Kill("reactor-web-1", "KILL").ok());
  InstanceInfo listed;
  ASSERT_TRUE(WaitFor(
      [&] {
        listed = Listed(*cloud_, "web-1");
        return !listed.running;
      },
      seconds(10)));
  EXPECT_EQ(listed.instance_id, "web-1");
  EXPECT_FALSE(listed.pending);
  EXPECT_EQ(listed.exit_code, 137);
  EXPECT_EQ(listed.detail, "exited with code 137");
  EXPECT_EQ(events_.Count("exit"), 1);
  auto inspected = cloud_->Inspect("web-1");
  ASSERT_TRUE(inspected.ok());
  EXPECT_FALSE(inspected->running);
  EXPECT_EQ(inspected->exit_code, 137);
  ASSERT_TRUE(cloud_->Stop("web-1", milliseconds(1000)).ok());
  EXPECT_TRUE(dockerd_->client().Inspect("reactor-web-1").status().IsNotFound());
}

/// A loopback port nothing listens on (bound, then closed).
int ClosedLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(DockerCloudComponent, ImageThatCannotBePulledFailsWithDockersMessage) {
  // A registry on a closed loopback port: the pull fails at once, and
  // nothing leaves 127.0.0.1 (docker treats 127.0.0.0/8 registries as
  // insecure and tries https, then http).
  const std::string image = "127.0.0.1:" + std::to_string(ClosedLoopbackPort()) + "/reactor-no-such-image:1";
  EndpointConfig ep = HttpdEndpoint();
  ep.docker.image = image;
  auto info = cloud_->Launch(Request("web-1", ep));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->pending);
  EXPECT_EQ(info->detail, "pulling image " + image);
  InstanceInfo listed;
  ASSERT_TRUE(WaitFor(
      [&] {
        listed = Listed(*cloud_, "web-1");
        return !listed.pending;
      },
      seconds(60)))
      << "still pending: " << listed.detail;
  EXPECT_EQ(listed.instance_id, "web-1");
  EXPECT_FALSE(listed.running);
  EXPECT_FALSE(listed.pending);
  // Our context, then docker's own words.
  EXPECT_THAT(listed.detail, HasSubstr("pull of image " + image + " failed: "));
  EXPECT_THAT(listed.detail, HasSubstr("connection refused")) << listed.detail;
  std::cout << "[ detail   ] " << listed.detail << "\n";
  EXPECT_EQ(events_.Count("error"), 1);
  ASSERT_TRUE(cloud_->Stop("web-1", milliseconds(1000)).ok());
  auto list = cloud_->List(manager_);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(DockerCloudComponent, ForeignContainersAreNeverTouched) {
  DockerClient& docker = dockerd_->client();
  ContainerSpec foreign;
  foreign.image = kImage;
  foreign.cmd = {"/bin/sleep", "300"};
  foreign.network_mode = "host";
  foreign.name = "reactor-foreign-1";  // our naming, but no labels
  auto unlabelled = docker.CreateContainer(foreign);
  ASSERT_TRUE(unlabelled.ok()) << unlabelled.status().ToString();
  foreign.name = "reactor-other-1";  // labelled for another manager
  foreign.labels = {{"reactor.managed", "1"},
                    {"reactor.manager", "host-b"},
                    {"reactor.instance", "other-1"},
                    {"reactor.endpoint", "web"}};
  auto others = docker.CreateContainer(foreign);
  ASSERT_TRUE(others.ok()) << others.status().ToString();
  for (const std::string& id : {*unlabelled, *others}) ASSERT_TRUE(docker.Start(id).ok());

  auto list = cloud_->List(manager_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
  EXPECT_TRUE(cloud_->Stop("foreign-1", milliseconds(1000)).IsConflict());
  EXPECT_TRUE(cloud_->Stop("other-1", milliseconds(1000)).IsConflict());
  EXPECT_TRUE(cloud_->Inspect("foreign-1").status().IsNotFound());
  EXPECT_TRUE(cloud_->Inspect("other-1").status().IsNotFound());
  // Both still run.
  for (const std::string& id : {*unlabelled, *others}) {
    auto state = docker.Inspect(id);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_TRUE(state->running) << state->name;
  }
  // A launch under a taken name is refused, the foreign container unharmed.
  const EndpointConfig ep = HttpdEndpoint();
  EXPECT_TRUE(cloud_->Launch(Request("foreign-1", ep)).status().IsConflict());
  EXPECT_TRUE(docker.Inspect(*unlabelled)->running);
}

TEST_F(DockerCloudComponent, UnreachableDockerIsUnavailable) {
  const EndpointConfig ep = HttpdEndpoint();
  // No socket file at all.
  const std::string missing = dockerd_->dir() + "/missing.sock";
  auto cloud = NewCloud(missing);
  auto launched = cloud->Launch(Request("web-1", ep));
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(launched.status().message(), HasSubstr("cannot reach docker at " + missing));
  EXPECT_THAT(launched.status().message(), HasSubstr("No such file or directory"));
  auto listed = cloud->List(manager_);
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), Status::Code::kUnavailable);

  // A socket file nobody listens on.
  const std::string dead = dockerd_->dir() + "/dead.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", dead.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  auto refused = NewCloud(dead)->List(manager_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("connection refused"));

  // A daemon that accepts connections but never answers costs one timeout.
  const std::string hung = dockerd_->dir() + "/hung.sock";
  const int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", hung.c_str());
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 8), 0);
  const auto begin = steady_clock::now();
  auto hung_list = NewCloud(hung, milliseconds(500))->List(manager_);
  const auto took = steady_clock::now() - begin;
  ::close(lfd);
  ASSERT_FALSE(hung_list.ok());
  EXPECT_EQ(hung_list.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(hung_list.status().message(), HasSubstr("did not answer in time"));
  EXPECT_LT(took, seconds(3));
}

}  // namespace
}  // namespace reactor
