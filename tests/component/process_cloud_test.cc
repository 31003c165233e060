// ProcessCloud against real processes on loopback. Every wait is bounded and
// every process a test starts is stopped by pid in TearDown.
#include "agent/cloud/process_cloud.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_event_sink.h"

namespace reactor {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

bool WaitFor(const std::function<bool()>& cond, milliseconds limit = milliseconds(10000)) {
  const auto deadline = steady_clock::now() + limit;
  while (steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(25));
  }
  return cond();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// Sends a GET and returns the status line, or "" if nothing answers.
std::string HttpStatusLine(int port) {
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
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req, sizeof(req) - 1) == static_cast<ssize_t>(sizeof(req) - 1)) {
      char buf[256];
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) out.assign(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out.substr(0, out.find('\r'));
}

bool ProcessExists(pid_t pid) {
  // A zombie is gone for our purposes.
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

bool ProcEntryExists(pid_t pid) { return ::access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0; }

/// Ports [lo, lo+count) that nobody listens on now, in a region far from
/// the agent's defaults.
int FindFreePortBlock(int count) {
  for (int base = 42000 + (::getpid() % 400) * 10; base < 60000; base += count) {
    bool all_free = true;
    for (int p = base; p < base + count && all_free; ++p) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(p));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      all_free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      ::close(fd);
    }
    if (all_free) return base;
  }
  return 0;
}

/// An HTTP server command line that needs no network beyond loopback.
std::string HttpServerCommand() {
  if (::access("/bin/busybox", X_OK) == 0) return "/bin/busybox httpd -f -p 127.0.0.1:${PORT}";
  return "python3 -m http.server ${PORT} --bind 127.0.0.1";
}
std::string HttpServerShellTail() {
  if (::access("/bin/busybox", X_OK) == 0) return "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT";
  return "exec python3 -m http.server $PORT --bind 127.0.0.1";
}

class ProcessCloudTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reactor-process-cloud-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    work_dir_ = dir_ + "/work";
    ASSERT_EQ(::mkdir(work_dir_.c_str(), 0755), 0);
    port_lo_ = FindFreePortBlock(8);
    ASSERT_NE(port_lo_, 0);
    settings_.state_dir = dir_ + "/state";
    settings_.log_dir = dir_ + "/logs";
    settings_.port_range = PortRange{port_lo_, port_lo_ + 7};
    settings_.stop_grace = Duration(2000);
    settings_.kill_wait = Duration(3000);
    cloud_ = std::make_unique<ProcessCloud>(settings_, events_, SystemClock::Get());

    endpoint_.name = "web";
    endpoint_.cloud = CloudKind::kProcess;
    endpoint_.process.command = HttpServerCommand();
    endpoint_.process.working_dir = work_dir_;
  }

  void TearDown() override {
    // Stop whatever is still recorded (by pid group, through the cloud),
    // then any helper process the test started itself.
    ProcessCloud cleaner(settings_, events_, SystemClock::Get());
    for (const char* manager : {"m1", "m2"}) {
      auto list = cleaner.List(manager);
      if (!list.ok()) continue;
      for (const InstanceInfo& info : *list) cleaner.Stop(info.instance_id, Duration(500));
    }
    for (pid_t pid : helpers_) {
      ::kill(pid, SIGKILL);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  Result<InstanceInfo> Launch(const std::string& id, const std::string& manager = "m1") {
    LaunchRequest req;
    req.instance_id = id;
    req.manager = manager;
    req.endpoint = &endpoint_;
    return cloud_->Launch(req);
  }

  static int PortOf(const InstanceInfo& info) {
    return std::atoi(info.address.substr(info.address.rfind(':') + 1).c_str());
  }

  pid_t PidOf(const std::string& id) {
    auto record = cloud_->ReadRecord(id);
    return record.ok() ? record->pid : -1;
  }

  /// A `sleep` child of the test itself, killed in TearDown.
  pid_t StartHelperSleep() {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    helpers_.push_back(pid);
    return pid;
  }

  std::string dir_;
  std::string work_dir_;
  int port_lo_ = 0;
  ProcessCloudSettings settings_;
  FakeEventSink events_;
  std::unique_ptr<ProcessCloud> cloud_;
  EndpointConfig endpoint_;
  std::vector<pid_t> helpers_;
};

TEST_F(ProcessCloudTest, LaunchedInstanceAnswersHttpOnItsPort) {
  auto info = Launch("web-1");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->running);
  EXPECT_EQ(info->endpoint, "web");
  EXPECT_EQ(info->address.rfind("127.0.0.1:", 0), 0u);
  const int port = PortOf(*info);
  EXPECT_GE(port, port_lo_);
  EXPECT_LE(port, port_lo_ + 7);
  EXPECT_TRUE(WaitFor([&] { return HttpStatusLine(port).rfind("HTTP/", 0) == 0; })) << "no HTTP on " << port;
  EXPECT_EQ(events_.Count("launch"), 1);

  // Own session and process group.
  const pid_t pid = PidOf("web-1");
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::getpgid(pid), pid);
  EXPECT_EQ(::getsid(pid), pid);

  // The record is complete.
  const nlohmann::json record = nlohmann::json::parse(ReadFile(settings_.state_dir + "/web-1.json"));
  EXPECT_EQ(record["endpoint"], "web");
  EXPECT_EQ(record["manager"], "m1");
  EXPECT_EQ(record["pid"], pid);
  EXPECT_EQ(record["port"], port);
  EXPECT_EQ(record["address"], info->address);
  EXPECT_GT(record["start_time"].get<unsigned long long>(), 0u);
  EXPECT_EQ(record["command"], endpoint_.process.command);
}

TEST_F(ProcessCloudTest, EnvironmentAndNameExpansionReachTheProcess) {
  endpoint_.process.command =
      "/bin/sh -c 'echo \"$NAME $PORT $ENDPOINT $GREETING ${NAME} ${NOTIFY_SOCKET:-none}\" > env.out; " +
      HttpServerShellTail() + "'";
  endpoint_.process.environment = {{"GREETING", "hello-${NAME}-${PORT}"}};
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);  // the agent's, not the application's
  auto info = Launch("web-7");
  ::unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const int port = PortOf(*info);
  const std::string out_file = work_dir_ + "/env.out";
  ASSERT_TRUE(WaitFor([&] { return ReadFile(out_file).find('\n') != std::string::npos; }));
  const std::string p = std::to_string(port);
  EXPECT_EQ(ReadFile(out_file), "web-7 " + p + " web hello-web-7-" + p + " web-7 none\n");
  EXPECT_TRUE(WaitFor([&] { return HttpStatusLine(port).rfind("HTTP/", 0) == 0; }));
}

TEST_F(ProcessCloudTest, OutputIsAppendedToTheInstanceLog) {
  endpoint_.process.command = "/bin/sh -c 'echo to-stdout; echo to-stderr >&2; exec sleep 300'";
  auto info = Launch("web-2");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string log = settings_.log_dir + "/web/web-2.log";
  EXPECT_TRUE(WaitFor([&] {
    const std::string text = ReadFile(log);
    return text.find("to-stdout") != std::string::npos && text.find("to-stderr") != std::string::npos;
  })) << ReadFile(log);
  ASSERT_TRUE(cloud_->Stop("web-2", Duration(1000)).ok());

  // A second run under the same id appends.
  info = Launch("web-2");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(WaitFor([&] {
    const std::string text = ReadFile(log);
    const size_t first = text.find("to-stdout");
    return first != std::string::npos && text.find("to-stdout", first + 1) != std::string::npos;
  })) << ReadFile(log);
}

TEST_F(ProcessCloudTest, StopEndsTheWholeProcessGroup) {
  endpoint_.process.command = "/bin/sh -c 'sleep 300 & echo $! > child.pid; " + HttpServerShellTail() + "'";
  auto info = Launch("web-3");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const pid_t pid = PidOf("web-3");
  const std::string child_file = work_dir_ + "/child.pid";
  ASSERT_TRUE(WaitFor([&] { return ReadFile(child_file).find('\n') != std::string::npos; }));
  const pid_t child = std::atoi(ReadFile(child_file).c_str());
  ASSERT_GT(child, 0);
  ASSERT_TRUE(ProcessExists(child));
  EXPECT_TRUE(WaitFor([&] { return HttpStatusLine(PortOf(*info)).rfind("HTTP/", 0) == 0; }));

  const auto started = steady_clock::now();
  ASSERT_TRUE(cloud_->Stop("web-3", Duration(5000)).ok());
  EXPECT_LT(steady_clock::now() - started, milliseconds(4000)) << "SIGTERM should have been enough";
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_FALSE(ProcEntryExists(pid)) << "the leader must be reaped, not left a zombie";
  EXPECT_FALSE(ProcessExists(child));
  EXPECT_TRUE(cloud_->Inspect("web-3").status().IsNotFound());
  EXPECT_EQ(events_.Count("stop"), 1);
  // Stopping again is fine.
  EXPECT_TRUE(cloud_->Stop("web-3", Duration(100)).ok());
}

TEST_F(ProcessCloudTest, StopKillsWhatIgnoresSigtermAfterTheGrace) {
  endpoint_.process.command = "/bin/sh -c 'trap \"\" TERM; sleep 300 & echo $! > child.pid; wait'";
  auto info = Launch("web-4");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const pid_t pid = PidOf("web-4");
  const std::string child_file = work_dir_ + "/child.pid";
  ASSERT_TRUE(WaitFor([&] { return ReadFile(child_file).find('\n') != std::string::npos; }));
  const pid_t child = std::atoi(ReadFile(child_file).c_str());
  ASSERT_GT(child, 0);

  const auto started = steady_clock::now();
  ASSERT_TRUE(cloud_->Stop("web-4", Duration(600)).ok());
  const auto took = steady_clock::now() - started;
  EXPECT_GE(took, milliseconds(550));
  EXPECT_LT(took, milliseconds(5000));
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_FALSE(ProcEntryExists(pid));
  EXPECT_FALSE(ProcessExists(child));
  auto events = events_.Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, "stop");
  EXPECT_NE(events.back().message.find("killed"), std::string::npos) << events.back().message;
}

TEST_F(ProcessCloudTest, AnotherProcessCloudAdoptsAndStopsRunningInstances) {
  auto info = Launch("web-5");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const pid_t pid = PidOf("web-5");

  // A new agent over the same state: same instance, running, no duplicate.
  FakeEventSink events2;
  ProcessCloud second(settings_, events2, SystemClock::Get());
  auto list = second.List("m1");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].instance_id, "web-5");
  EXPECT_TRUE((*list)[0].running);
  EXPECT_EQ((*list)[0].address, info->address);
  EXPECT_EQ(events2.Count("adopt"), 1);
  ASSERT_TRUE(second.List("m1").ok());
  EXPECT_EQ(events2.Count("adopt"), 1) << "adoption is reported once";
  // Other managers' instances are not listed.
  EXPECT_TRUE(second.List("m2")->empty());

  // A launch under the same id is refused, and its port is not handed out again.
  LaunchRequest req{"web-5", "m1", &endpoint_};
  EXPECT_TRUE(second.Launch(req).status().IsConflict());
  req.instance_id = "web-6";
  auto other = second.Launch(req);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_NE(other->address, info->address);

  ASSERT_TRUE(second.Stop("web-5", Duration(3000)).ok());
  EXPECT_FALSE(ProcessExists(pid));
  auto remaining = cloud_->List("m1");
  ASSERT_TRUE(remaining.ok());
  ASSERT_EQ(remaining->size(), 1u);
  EXPECT_EQ((*remaining)[0].instance_id, "web-6");
}

TEST_F(ProcessCloudTest, InstanceSurvivesItsAgentBeingKilledAndIsAdopted) {
  // A forked "agent" launches an instance and is then killed with SIGKILL.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t agent = ::fork();
  if (agent == 0) {
    ::close(ready[0]);
    FakeEventSink sink;
    ProcessCloud doomed(settings_, sink, SystemClock::Get());
    LaunchRequest req{"web-25", "m1", &endpoint_};
    const char verdict = doomed.Launch(req).ok() ? 'y' : 'n';
    if (::write(ready[1], &verdict, 1) != 1) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  helpers_.push_back(agent);
  ::close(ready[1]);
  pollfd pfd{ready[0], POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  char verdict = 0;
  ASSERT_EQ(::read(ready[0], &verdict, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(verdict, 'y');
  ::kill(agent, SIGKILL);
  int st = 0;
  ASSERT_EQ(::waitpid(agent, &st, 0), agent);
  helpers_.clear();

  auto list = cloud_->List("m1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].running) << (*list)[0].detail;
  const pid_t pid = PidOf("web-25");
  EXPECT_TRUE(WaitFor([&] { return HttpStatusLine(PortOf((*list)[0])).rfind("HTTP/", 0) == 0; }));
  ASSERT_TRUE(cloud_->Stop("web-25", Duration(3000)).ok());
  EXPECT_FALSE(ProcessExists(pid));
}

TEST_F(ProcessCloudTest, ExitedProcessIsReportedNotRunningAndReaped) {
  endpoint_.process.command = "/bin/sh -c 'exit 3'";
  auto info = Launch("web-8");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const pid_t pid = PidOf("web-8");
  InstanceInfo seen;
  ASSERT_TRUE(WaitFor([&] {
    auto list = cloud_->List("m1");
    if (!list.ok() || list->size() != 1) return false;
    seen = (*list)[0];
    return !seen.running;
  }));
  EXPECT_EQ(seen.exit_code, 3);
  EXPECT_NE(seen.detail.find("code 3"), std::string::npos) << seen.detail;
  EXPECT_FALSE(ProcEntryExists(pid)) << "exited child must be reaped";
  EXPECT_EQ(events_.Count("exit"), 1);

  // Stays not running, for this and for a new ProcessCloud, until stopped.
  auto again = cloud_->Inspect("web-8");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->running);
  EXPECT_EQ(again->exit_code, 3);
  ProcessCloud second(settings_, events_, SystemClock::Get());
  auto inspected = second.Inspect("web-8");
  ASSERT_TRUE(inspected.ok());
  EXPECT_FALSE(inspected->running);
  EXPECT_EQ(events_.Count("exit"), 1);
  EXPECT_TRUE(cloud_->Stop("web-8", Duration(100)).ok());
  EXPECT_TRUE(cloud_->Inspect("web-8").status().IsNotFound());
}

TEST_F(ProcessCloudTest, KilledProcessIsReportedWithItsSignal) {
  endpoint_.process.command = "/bin/sleep 300";
  auto info = Launch("web-9");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(::kill(PidOf("web-9"), SIGKILL), 0);
  InstanceInfo seen;
  ASSERT_TRUE(WaitFor([&] {
    auto r = cloud_->Inspect("web-9");
    if (!r.ok()) return false;
    seen = *r;
    return !seen.running;
  }));
  EXPECT_EQ(seen.exit_code, 128 + SIGKILL);
  EXPECT_NE(seen.detail.find("signal 9"), std::string::npos) << seen.detail;
}

/// Writes a record by hand, as if an earlier agent had launched `pid`.
void WriteFakeRecord(const std::string& state_dir, const std::string& id, pid_t pid, unsigned long long start_time,
                     int port) {
  ::mkdir(state_dir.c_str(), 0755);
  nlohmann::json j = {{"instance_id", id},
                      {"endpoint", "web"},
                      {"manager", "m1"},
                      {"pid", pid},
                      {"start_time", start_time},
                      {"port", port},
                      {"address", "127.0.0.1:" + std::to_string(port)},
                      {"command", "sleep 300"}};
  std::ofstream(state_dir + "/" + id + ".json") << j.dump();
}

unsigned long long StartTimeOf(pid_t pid) {
  std::string line = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(line.substr(line.rfind(')') + 1));
  std::string tok;
  for (int field = 3; field <= 22 && fields >> tok; ++field) {
  }
  return std::strtoull(tok.c_str(), nullptr, 10);
}

TEST_F(ProcessCloudTest, ReusedPidIsNotRunningAndNeverSignalled) {
  const pid_t victim = StartHelperSleep();
  ASSERT_TRUE(WaitFor([&] { return ProcessExists(victim); }));
  WriteFakeRecord(settings_.state_dir, "web-10", victim, StartTimeOf(victim) + 12345, port_lo_);

  auto list = cloud_->List("m1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].running);
  EXPECT_NE((*list)[0].detail.find("another process"), std::string::npos) << (*list)[0].detail;

  ASSERT_TRUE(cloud_->Stop("web-10", Duration(200)).ok());
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(ProcessExists(victim)) << "Stop must not signal a pid whose start time differs";
  int st = 0;
  EXPECT_EQ(::waitpid(victim, &st, WNOHANG), 0) << "the helper must not have been killed or reaped";
  EXPECT_TRUE(cloud_->Inspect("web-10").status().IsNotFound());

  // Also when the record's pid is our own.
  WriteFakeRecord(settings_.state_dir, "web-11", ::getpid(), StartTimeOf(::getpid()) + 1, port_lo_ + 1);
  auto self = cloud_->Inspect("web-11");
  ASSERT_TRUE(self.ok());
  EXPECT_FALSE(self->running);
  EXPECT_TRUE(cloud_->Stop("web-11", Duration(200)).ok());
}

TEST_F(ProcessCloudTest, RecordWithMatchingStartTimeIsAdopted) {
  // A process that is not a child of any ProcessCloud, recorded with its real
  // start time, counts as running and is stopped through its group.
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  helpers_.push_back(pid);
  ASSERT_TRUE(WaitFor([&] { return ProcessExists(pid) && ::getsid(pid) == pid; }));
  WriteFakeRecord(settings_.state_dir, "web-12", pid, StartTimeOf(pid), port_lo_);
  auto info = cloud_->Inspect("web-12");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->running) << info->detail;
  ASSERT_TRUE(cloud_->Stop("web-12", Duration(2000)).ok());
  // The test's own child: it is a zombie now, waiting for us.
  EXPECT_FALSE(ProcessExists(pid));
}

TEST_F(ProcessCloudTest, VanishedPidIsNotRunning) {
  const pid_t pid = StartHelperSleep();
  const unsigned long long start = StartTimeOf(pid);
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  helpers_.clear();
  WriteFakeRecord(settings_.state_dir, "web-13", pid, start, port_lo_);
  auto info = cloud_->Inspect("web-13");
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->running);
  EXPECT_TRUE(cloud_->Stop("web-13", Duration(100)).ok());
}

TEST_F(ProcessCloudTest, PortAllocationSkipsBoundAndListeningPorts) {
  // Hold the first port of the range the way another program would.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_lo_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);

  endpoint_.process.command = "/bin/sleep 300";
  auto a = Launch("web-14");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_NE(PortOf(*a), port_lo_);
  auto b = Launch("web-15");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NE(PortOf(*b), port_lo_);
  EXPECT_NE(PortOf(*b), PortOf(*a));
  ::close(fd);
}

TEST_F(ProcessCloudTest, RunsOutOfPortsWithUnavailable) {
  settings_.port_range = PortRange{port_lo_, port_lo_ + 1};
  cloud_ = std::make_unique<ProcessCloud>(settings_, events_, SystemClock::Get());
  endpoint_.process.command = "/bin/sleep 300";
  ASSERT_TRUE(Launch("web-16").ok());
  ASSERT_TRUE(Launch("web-17").ok());
  auto third = Launch("web-18");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Status::Code::kUnavailable);
}

TEST_F(ProcessCloudTest, RejectsBadCommandsWithoutStartingAnything) {
  endpoint_.process.command = "/bin/echo 'unbalanced";
  EXPECT_TRUE(Launch("web-19").status().IsInvalidArgument());
  endpoint_.process.command = "no-such-program-reactor-test --x";
  auto r = Launch("web-20");
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  endpoint_.process.command = "/bin/sleep 300";
  endpoint_.process.working_dir = dir_ + "/missing";
  EXPECT_TRUE(Launch("web-21").status().IsInvalidArgument());
  endpoint_.process.working_dir.clear();
  EXPECT_TRUE(Launch("Bad_Id").status().IsInvalidArgument());
  auto list = cloud_->List("m1");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ProcessCloudTest, ResolvesProgramsOnPath) {
  endpoint_.process.command = "sleep 300";
  auto info = Launch("web-22");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto record = cloud_->ReadRecord("web-22");
  ASSERT_TRUE(record.ok());
  ASSERT_FALSE(record->argv.empty());
  EXPECT_EQ(record->argv[0].front(), '/') << record->argv[0];
  EXPECT_TRUE(cloud_->Inspect("web-22")->running);
}

TEST_F(ProcessCloudTest, DoesNotLeakTheAgentsFileDescriptors) {
  const int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 3);
  endpoint_.process.command = "/bin/sh -c 'ls /proc/self/fd > fds.out; exec sleep 300'";
  auto info = Launch("web-23");
  ::close(fd);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string out = work_dir_ + "/fds.out";
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(out).empty(); }));
  std::istringstream lines(ReadFile(out));
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) ++count;
  // 0, 1, 2 and the one ls opened to read the directory.
  EXPECT_LE(count, 4) << ReadFile(out);
}

TEST_F(ProcessCloudTest, StopWithFakeClockStillEndsInBoundedTime) {
  // A clock that never moves must not make Stop wait forever.
  struct FrozenClock : Clock {
    TimePoint Now() const override { return TimePoint(Duration(1)); }
    int64_t WallMillis() const override { return 0; }
  } frozen;
  ProcessCloud cloud(settings_, events_, frozen);
  endpoint_.process.command = "/bin/sh -c 'trap \"\" TERM; sleep 300 & wait'";
  LaunchRequest req{"web-24", "m1", &endpoint_};
  ASSERT_TRUE(cloud.Launch(req).ok());
  const auto started = steady_clock::now();
  ASSERT_TRUE(cloud.Stop("web-24", Duration(300)).ok());
  EXPECT_LT(steady_clock::now() - started, milliseconds(5000));
}

}  // namespace
}  // namespace reactor
