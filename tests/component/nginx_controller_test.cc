// LocalNginxController against a real nginx on loopback high ports, with
// in-test HTTP backends. Every wait is bounded; every process started here is
// stopped by pid (or by the controller, by the pid it started).
#include "agent/nginx/local_nginx_controller.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "agent/metrics/log_file_system.h"
#include "agent/metrics/log_tailer.h"
#include "agent/nginx/nginx_factory.h"
#include "agent/nginx/nginx_process.h"
#include "agent/nginx/nginx_render.h"
#include "fake_event_sink.h"

namespace reactor {
namespace {
namespace fs = std::filesystem;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A tiny HTTP/1.0-style backend: answers every request with its own name and
// closes the connection. Counts hits.
class TestBackend {
 public:
  explicit TestBackend(std::string name) : name_(std::move(name)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 128);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TestBackend() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  int hits() const { return hits_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (req.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 100) <= 0) continue;
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string resp =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(name_.size()) +
          "\r\nConnection: close\r\n\r\n" + name_;
      ssize_t w = write(c, resp.data(), resp.size());
      (void)w;
      ++hits_;
      shutdown(c, SHUT_WR);
      close(c);
    }
  }

  const std::string name_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
  std::thread thread_;
};

struct Response {
  long status = 0;
  std::string body;
  std::string location;
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Response Get(const std::string& url) {
  Response r;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    char* loc = nullptr;
    curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &loc);
    if (loc != nullptr) r.location = loc;
  }
  curl_easy_cleanup(curl);
  return r;
}

bool WaitFor(const std::function<bool()>& cond, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return cond();
}

class NginxControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rxng-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    settings_.prefix = dir_ + "/nginx";
    settings_.binary = "/usr/sbin/nginx";
    settings_.reload_delay = Duration(0);
    port_ = FreePort();
  }
  void TearDown() override {
    for (auto& c : controllers_) c->Stop();
    controllers_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  LocalNginxController& NewController() {
    controllers_.push_back(std::make_unique<LocalNginxController>(settings_, events_, SystemClock::Get()));
    return *controllers_.back();
  }

  EndpointConfig Endpoint(const std::string& name, const std::string& path = "/") {
    EndpointConfig e;
    e.name = name;
    e.url.host = "127.0.0.1";
    e.url.port = port_;
    e.url.path = path;
    e.lb.hold_timeout = Duration(0);  // these tests answer at once with no member (holds: HoldsARequest...)
    return e;
  }

  std::string Url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  // ApplySites, then Flush until applied; waits until nginx answers `path` with `status`.
  void ApplyAndServe(LocalNginxController& c, const std::vector<EndpointConfig>& eps, long status,
                     const std::string& path = "/") {
    ASSERT_TRUE(c.ApplySites(eps).ok());
    Status s = c.Flush();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(WaitFor([&] { return Get(Url(path)).status == status; })) << "last status " << Get(Url(path)).status;
  }

  std::string dir_;
  NginxSettings settings_;
  int port_ = 0;
  FakeEventSink events_;
  std::vector<std::unique_ptr<LocalNginxController>> controllers_;
};

TEST_F(NginxControllerTest, FactoryMakesAController) {
  std::unique_ptr<NginxController> c = MakeNginxController(settings_, events_, SystemClock::Get());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->AccessLogPath(), settings_.prefix + "/logs/access.log");
}

TEST_F(NginxControllerTest, Answers503WithoutMembersThenServesThemWithoutReload) {
  TestBackend a("a"), b("b");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  const pid_t pid = c.MasterPid();
  const int reloads = c.ReloadCount();
  ASSERT_GT(pid, 0);

  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}, {b.Address(), 1}}).ok());
  for (int i = 0; i < 20; ++i) {
    Response r = Get(Url());
    ASSERT_EQ(r.status, 200);
    ASSERT_TRUE(r.body == "a" || r.body == "b") << r.body;
  }
  EXPECT_GE(a.hits(), 5) << "round robin spreads";
  EXPECT_GE(b.hits(), 5) << "round robin spreads";
  EXPECT_EQ(c.ReloadCount(), reloads);
  EXPECT_EQ(c.MasterPid(), pid);

  ASSERT_TRUE(c.SetMembers("web", {}).ok());
  EXPECT_EQ(Get(Url()).status, 503);
  EXPECT_EQ(c.ReloadCount(), reloads);

  // The access log names the endpoint through $proxy_host.
  std::ifstream log(c.AccessLogPath());
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("|reactor_web|200|"), std::string::npos);
}

TEST_F(NginxControllerTest, HoldsARequestWithoutMembersUntilOneJoinsThenAnswers503PastTheHold) {
  TestBackend a("a");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  EndpointConfig web = Endpoint("web");
  web.lb.hold_timeout = Duration(5000);
  ApplyAndServe(c, {Endpoint("web")}, 503);  // served (no hold yet), then the hold is a route push
  ASSERT_TRUE(c.ApplySites({web}).ok());
  ASSERT_TRUE(c.Flush().ok());
  const int reloads = c.ReloadCount();
  const auto start = std::chrono::steady_clock::now();
  std::thread join([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  });
  Response r = Get(Url());
  join.join();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 200) << "held until the member joined";
  EXPECT_EQ(r.body, "a");
  EXPECT_GE(took, std::chrono::milliseconds(450));
  EXPECT_LT(took, std::chrono::milliseconds(4000));
  EXPECT_EQ(c.ReloadCount(), reloads);

  // No member again, a short hold: 503 after it.
  ASSERT_TRUE(c.SetMembers("web", {}).ok());
  web.lb.hold_timeout = Duration(300);
  ASSERT_TRUE(c.ApplySites({web}).ok());
  ASSERT_TRUE(c.Flush().ok());
  const auto again = std::chrono::steady_clock::now();
  EXPECT_EQ(Get(Url()).status, 503);
  EXPECT_GE(std::chrono::steady_clock::now() - again, std::chrono::milliseconds(250));
}

TEST_F(NginxControllerTest, WeightsAndRedirectWhenEmpty) {
  TestBackend a("a"), b("b");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  EndpointConfig moved = Endpoint("moved", "/moved/");
  moved.lb.redirect = "http://example.com/sorry";
  ApplyAndServe(c, {Endpoint("web"), moved}, 301, "/moved/x");
  EXPECT_EQ(Get(Url("/moved/x")).location, "http://example.com/sorry");
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 3}, {b.Address(), 1}}).ok());
  for (int i = 0; i < 40; ++i) ASSERT_EQ(Get(Url()).status, 200);
  EXPECT_GT(a.hits(), b.hits() * 2) << a.hits() << " vs " << b.hits();
  ASSERT_TRUE(c.SetMembers("moved", {{b.Address(), 1}}).ok());
  Response r = Get(Url("/moved/x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "b");
}

TEST_F(NginxControllerTest, LeastConnAndIpHashServe) {
  TestBackend a("a"), b("b");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  EndpointConfig lc = Endpoint("lc", "/lc/");
  lc.lb.balance = Balance::kLeastConn;
  lc.lb.keepalive = 4;
  EndpointConfig ih = Endpoint("ih", "/ih/");
  ih.lb.balance = Balance::kIpHash;
  ApplyAndServe(c, {lc, ih}, 503, "/ih/");
  ASSERT_TRUE(c.SetMembers("lc", {{a.Address(), 1}, {b.Address(), 1}}).ok());
  ASSERT_TRUE(c.SetMembers("ih", {{a.Address(), 1}, {b.Address(), 1}}).ok());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(Get(Url("/lc/")).status, 200);
  EXPECT_GT(a.hits(), 0);
  EXPECT_GT(b.hits(), 0);
  std::string first = Get(Url("/ih/")).body;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Get(Url("/ih/")).body, first) << "one client address, one member";
}

TEST_F(NginxControllerTest, RetriesARefusingMemberOnAnother) {
  TestBackend a("a");
  const std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  ASSERT_TRUE(c.SetMembers("web", {{dead, 1}, {a.Address(), 1}}).ok());
  for (int i = 0; i < 20; ++i) {
    Response r = Get(Url());
    ASSERT_EQ(r.status, 200) << "request " << i;
    ASSERT_EQ(r.body, "a");
  }
}

TEST_F(NginxControllerTest, BrokenTemplateFailsAndOldConfigKeepsServing) {
  TestBackend a("a");
  fs::create_directories(dir_ + "/templates");
  settings_.template_dir = dir_ + "/templates";
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  ASSERT_EQ(Get(Url()).status, 200);
  const int reloads = c.ReloadCount();

  std::ifstream in(DefaultTemplateDir() + "/sites.conf.mustache");
  std::string sites((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir_ + "/templates/sites.conf.mustache") << sites << "\nno_such_directive on;\n";

  ASSERT_TRUE(c.ApplySites({Endpoint("web"), Endpoint("api", "/api/")}).ok());
  Status s = c.Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no_such_directive"), std::string::npos) << s.ToString();
  bool recorded = false;
  for (const auto& e : events_.Events()) {
    recorded |= e.kind == "error" && e.message.find("no_such_directive") != std::string::npos;
  }
  EXPECT_TRUE(recorded);
  EXPECT_EQ(c.ReloadCount(), reloads);
  EXPECT_EQ(Get(Url()).status, 200);
  // An endpoint on a port nginx listens on is a pushed route, not a config
  // change: /api/ is routed to api (no members yet: 503) with the broken
  // template unused.
  EXPECT_EQ(Get(Url("/api/")).status, 503);
  std::ifstream live(settings_.prefix + "/conf/sites.conf");
  std::string live_text((std::istreambuf_iterator<char>(live)), std::istreambuf_iterator<char>());
  EXPECT_EQ(live_text.find("no_such_directive"), std::string::npos);
}

TEST_F(NginxControllerTest, CoalescesManyChangesIntoOneReloadAndSkipsIdentical) {
  settings_.reload_delay = Duration(1500);
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  const int reloads = c.ReloadCount();
  std::vector<EndpointConfig> eps;
  for (int i = 0; i < 20; ++i) {
    eps.push_back(Endpoint("ep" + std::to_string(i), "/ep" + std::to_string(i) + "/"));
    ASSERT_TRUE(c.ApplySites(eps).ok());
    ASSERT_TRUE(c.Flush().ok());
  }
  EXPECT_EQ(c.ReloadCount(), reloads) << "20 changes applied within reload_delay";
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(c.Flush().ok());
    return c.ReloadCount() > reloads;
  }));
  EXPECT_EQ(c.ReloadCount(), reloads + 1);
  ASSERT_TRUE(WaitFor([&] { return Get(Url("/ep19/")).status == 503; }));

  // Byte-identical: nothing to do.
  ASSERT_TRUE(c.ApplySites(eps).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  ASSERT_TRUE(c.Flush().ok());
  EXPECT_EQ(c.ReloadCount(), reloads + 1);
  EXPECT_TRUE(fs::is_symlink(settings_.prefix + "/conf"));
  EXPECT_TRUE(fs::exists(settings_.prefix + "/conf.last-good/nginx.conf"));
}

TEST_F(NginxControllerTest, SuperviseRestartsKilledNginxAndRepushesMembers) {
  TestBackend a("a");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  const pid_t pid = c.MasterPid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(c.Supervise().ok());
    return c.MasterPid() != 0 && c.MasterPid() != pid;
  }));
  ASSERT_TRUE(WaitFor([&] { return Get(Url()).status == 200; }));
  EXPECT_EQ(Get(Url()).body, "a");
  EXPECT_GE(events_.Count("nginx"), 2);
}

TEST_F(NginxControllerTest, NewControllerAdoptsTheRunningNginx) {
  TestBackend a("a"), b("b");
  pid_t pid = 0;
  {
    LocalNginxController first(settings_, events_, SystemClock::Get());
    ASSERT_TRUE(first.Start().ok());
    ApplyAndServe(first, {Endpoint("web")}, 503);
    ASSERT_TRUE(first.SetMembers("web", {{a.Address(), 1}}).ok());
    pid = first.MasterPid();
    first.Detach();
  }
  ASSERT_TRUE(ProcessRunning(pid));
  EXPECT_EQ(Get(Url()).body, "a") << "nginx keeps serving while no agent runs";
  LocalNginxController& second = NewController();
  ASSERT_TRUE(second.Start().ok());
  EXPECT_EQ(second.MasterPid(), pid);
  const int reloads = second.ReloadCount();
  ApplyAndServe(second, {Endpoint("web")}, 200);
  EXPECT_EQ(second.ReloadCount(), reloads) << "identical config: no reload";
  ASSERT_TRUE(second.SetMembers("web", {{b.Address(), 1}}).ok());
  EXPECT_EQ(Get(Url()).body, "b");
}

TEST_F(NginxControllerTest, RestartedNginxServesPersistedMembers) {
  TestBackend a("a");
  {
    LocalNginxController& first = NewController();
    ASSERT_TRUE(first.Start().ok());
    ApplyAndServe(first, {Endpoint("web")}, 503);
    ASSERT_TRUE(first.SetMembers("web", {{a.Address(), 1}}).ok());
    ASSERT_TRUE(first.Stop().ok());
    ASSERT_NE(Get(Url()).status, 200);
  }
  LocalNginxController& second = NewController();
  ASSERT_TRUE(second.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Get(Url()).status == 200; }));
  EXPECT_EQ(Get(Url()).body, "a");
}

TEST_F(NginxControllerTest, ReloadModeEndToEnd) {
  TestBackend a("a"), b("b");
  settings_.upstreams = NginxSettings::Upstreams::kReload;
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  const int reloads = c.ReloadCount();
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}, {b.Address(), 1}}).ok());
  ASSERT_TRUE(c.Flush().ok());
  EXPECT_EQ(c.ReloadCount(), reloads + 1);
  // Right after a reload the old workers may still take a new connection for a
  // moment (nginx starts the new workers before retiring the old ones): wait
  // until ten requests in a row see the new config.
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 10; ++i) {
      if (Get(Url()).status != 200) return false;
    }
    return true;
  }));
  EXPECT_GT(a.hits(), 0);
  EXPECT_GT(b.hits(), 0);
  ASSERT_TRUE(c.SetMembers("web", {}).ok());
  ASSERT_TRUE(c.Flush().ok());
  ASSERT_TRUE(WaitFor([&] { return Get(Url()).status == 503; }));
  std::ifstream live(settings_.prefix + "/conf/sites.conf");
  std::string text((std::istreambuf_iterator<char>(live)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("upstream reactor_web"), std::string::npos);
  EXPECT_EQ(text.find("proxy_pass"), std::string::npos);
}

// System mode against a stand-in "system" nginx: its own main config that
// includes conf_dir/*.conf, started and stopped here by pid.
TEST_F(NginxControllerTest, SystemModeTestsSwapsAndReloadsBySystemPidFile) {
  TestBackend a("a");
  const std::string sys = dir_ + "/system";
  fs::create_directories(sys + "/conf.d");
  fs::create_directories(sys + "/logs");
  std::ofstream(sys + "/nginx.conf") << "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n"
                                     << "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n"
                                     << "worker_processes 1;\npid " << sys << "/nginx.pid;\nerror_log " << sys
                                     << "/logs/error.log;\n"
                                     << "events {}\nhttp {\n  client_body_temp_path " << sys
                                     << "/logs/body;\n  proxy_temp_path " << sys << "/logs/proxy;\n  include " << sys
                                     << "/conf.d/*.conf;\n}\n";
  settings_.mode = NginxSettings::Mode::kSystem;
  settings_.conf_dir = sys + "/conf.d";
  settings_.system_conf = sys + "/nginx.conf";
  settings_.system_pid_file = sys + "/nginx.pid";
  Result<pid_t> nginx = SpawnDetached({"/usr/sbin/nginx", "-p", sys, "-c", sys + "/nginx.conf", "-g", "daemon off;"},
                                      sys + "/logs/stderr");
  ASSERT_TRUE(nginx.ok());
  struct Stopper {
    pid_t pid;
    ~Stopper() {
      kill(pid, SIGQUIT);
      WaitFor([&] { return ReapIfExited(pid) || !ProcessRunning(pid); });
      if (kill(-pid, 0) == 0) kill(-pid, SIGKILL);
      ReapIfExited(pid);
    }
  } stopper{nginx.value()};
  ASSERT_TRUE(WaitFor([&] { return ReadPidFile(sys + "/nginx.pid") == nginx.value(); }));

  LocalNginxController& c = NewController();
  Status s = c.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.MasterPid(), nginx.value());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  EXPECT_TRUE(fs::exists(sys + "/conf.d/reactor.conf"));
  const int reloads = c.ReloadCount();
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  EXPECT_EQ(Get(Url()).body, "a");
  EXPECT_EQ(c.ReloadCount(), reloads);

  // A refused config is restored before anyone reloads.
  fs::create_directories(dir_ + "/templates");
  std::ofstream(dir_ + "/templates/sites.conf.mustache") << "no_such_directive on;\n";
  settings_.template_dir = dir_ + "/templates";
  LocalNginxController& broken = NewController();
  ASSERT_TRUE(broken.Start().ok());
  struct stat before {};
  ASSERT_EQ(stat((sys + "/conf.d/reactor.conf").c_str(), &before), 0);
  EndpointConfig other = Endpoint("other");
  other.url.port = FreePort();  // a new server: the broken template is rendered
  ASSERT_TRUE(broken.ApplySites({Endpoint("web"), other}).ok());
  EXPECT_FALSE(broken.Flush().ok());
  // Tested where the system nginx reads a candidate, not in conf_dir: the
  // live file was never replaced, not even for a moment.
  struct stat after {};
  ASSERT_EQ(stat((sys + "/conf.d/reactor.conf").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_FALSE(fs::exists(sys + "/.reactor-candidate.conf"));
  EXPECT_FALSE(fs::exists(sys + "/conf.d/.reactor.conf.new"));
  std::ifstream live(sys + "/conf.d/reactor.conf");
  std::string text((std::istreambuf_iterator<char>(live)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("no_such_directive"), std::string::npos);
  EXPECT_EQ(Get(Url()).body, "a");
}

TEST_F(NginxControllerTest, MembershipChurnUnderWrkLoadHasNoErrors) {
  TestBackend a("a"), b("b"), d("d");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}, {b.Address(), 1}}).ok());
  const int reloads = c.ReloadCount();
  Result<CommandResult> wrk = Status::Internal("not run");
  std::thread load([&] { wrk = RunCommand({"/usr/bin/wrk", "-t1", "-c8", "-d4s", Url()}, Duration(20000)); });
  const std::vector<std::vector<Member>> sets = {{{a.Address(), 1}},
                                                 {{b.Address(), 1}, {d.Address(), 2}},
                                                 {{a.Address(), 1}, {d.Address(), 1}},
                                                 {{d.Address(), 1}},
                                                 {{a.Address(), 2}, {b.Address(), 1}, {d.Address(), 1}}};
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.SetMembers("web", sets[i % sets.size()]).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  load.join();
  ASSERT_TRUE(wrk.ok()) << wrk.status().ToString();
  EXPECT_EQ(wrk->exit_code, 0) << wrk->output;
  EXPECT_NE(wrk->output.find("Requests/sec"), std::string::npos) << wrk->output;
  EXPECT_EQ(wrk->output.find("Socket errors"), std::string::npos) << wrk->output;
  EXPECT_EQ(wrk->output.find("Non-2xx"), std::string::npos) << wrk->output;
  EXPECT_EQ(c.ReloadCount(), reloads);
  EXPECT_GT(a.hits() + b.hits() + d.hits(), 100);
}

TEST_F(NginxControllerTest, RoutesOnAListenedPortChangeWithoutReload) {
  TestBackend a("a"), b("b"), d("d");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  ASSERT_EQ(Get(Url("/x")).body, "a");
  const int reloads = c.ReloadCount();
  const pid_t pid = c.MasterPid();

  // A new endpoint on the port: routed at once, longest prefix wins.
  EndpointConfig api = Endpoint("api", "/api/");
  EndpointConfig v2 = Endpoint("v2", "/api/v2/");
  ASSERT_TRUE(c.ApplySites({Endpoint("web"), api, v2}).ok());
  EXPECT_EQ(Get(Url("/api/x")).status, 503) << "routed, no members yet";
  ASSERT_TRUE(c.SetMembers("api", {{b.Address(), 1}}).ok());
  ASSERT_TRUE(c.SetMembers("v2", {{d.Address(), 1}}).ok());
  EXPECT_EQ(Get(Url("/api/x")).body, "b");
  EXPECT_EQ(Get(Url("/api/v2/x")).body, "d");
  EXPECT_EQ(Get(Url("/apix")).body, "a");
  Response slash = Get(Url("/api"));
  EXPECT_EQ(slash.status, 301);
  EXPECT_NE(slash.location.find("/api/"), std::string::npos) << slash.location;

  // balance and redirect change live too.
  api.lb.balance = Balance::kIpHash;
  v2.lb.redirect = "http://example.com/away";
  ASSERT_TRUE(c.ApplySites({Endpoint("web"), api, v2}).ok());
  ASSERT_TRUE(c.SetMembers("v2", {}).ok());
  Response away = Get(Url("/api/v2/x"));
  EXPECT_EQ(away.status, 301);
  EXPECT_EQ(away.location, "http://example.com/away");

  // Removed: its paths fall to the next prefix.
  ASSERT_TRUE(c.ApplySites({Endpoint("web"), api}).ok());
  ASSERT_TRUE(c.Flush().ok());
  EXPECT_EQ(Get(Url("/api/v2/x")).body, "b");
  EXPECT_EQ(c.ReloadCount(), reloads) << "route changes on a listened port reload nothing";
  EXPECT_EQ(c.MasterPid(), pid);

  // No endpoint at "/": an unrouted path is a 404.
  ASSERT_TRUE(c.ApplySites({api}).ok());
  EXPECT_EQ(Get(Url("/x")).status, 404);

  // A new port is a reload; the routes persisted survive a restart.
  EndpointConfig other = Endpoint("other");
  other.url.port = FreePort();
  ASSERT_TRUE(c.ApplySites({api, other}).ok());
  ASSERT_TRUE(c.Flush().ok());
  EXPECT_EQ(c.ReloadCount(), reloads + 1);
  const std::string other_url = "http://127.0.0.1:" + std::to_string(other.url.port) + "/";
  ASSERT_TRUE(WaitFor([&] { return Get(other_url).status == 503; }));
  ASSERT_TRUE(c.Stop().ok());
  LocalNginxController& again = NewController();
  ASSERT_TRUE(again.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Get(Url("/api/x")).body == "b"; }));
  EXPECT_EQ(Get(other_url).status, 503);
}

TEST_F(NginxControllerTest, EndpointNginxRefusesIsHeldBackAndTheRestApplied) {
  TestBackend a("a");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  EndpointConfig bad = Endpoint("badtls");
  bad.url.port = FreePort();
  bad.lb.ssl_certificate = dir_ + "/missing.crt";
  bad.lb.ssl_key = dir_ + "/missing.key";
  EndpointConfig good = Endpoint("good");
  good.url.port = FreePort();
  EndpointConfig invalid = Endpoint("invalid", "/x;y/");
  ASSERT_TRUE(c.ApplySites({Endpoint("web"), bad, good, invalid}).ok());
  Status s = c.Flush();
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string good_url = "http://127.0.0.1:" + std::to_string(good.url.port) + "/";
  ASSERT_TRUE(WaitFor([&] { return Get(good_url).status == 503; })) << "the good endpoint's new port is served";
  ASSERT_TRUE(c.SetMembers("good", {{a.Address(), 1}}).ok());
  EXPECT_EQ(Get(good_url).body, "a");
  std::map<std::string, std::string> held = c.HeldBack();
  ASSERT_EQ(held.count("badtls"), 1u);
  EXPECT_NE(held["badtls"].find("missing.crt"), std::string::npos) << held["badtls"];
  EXPECT_EQ(held.count("invalid"), 1u);
  EXPECT_EQ(held.count("good"), 0u);
  bool recorded = false;
  for (const auto& e : events_.Events()) recorded |= e.endpoint == "badtls" && e.message.find("held back") == 0;
  EXPECT_TRUE(recorded);
  // Fixed: applied on the next change.
  bad.lb.ssl_certificate.clear();
  bad.lb.ssl_key.clear();
  ASSERT_TRUE(c.ApplySites({Endpoint("web"), bad, good}).ok());
  ASSERT_TRUE(c.Flush().ok());
  EXPECT_TRUE(c.HeldBack().empty());
  const std::string bad_url = "http://127.0.0.1:" + std::to_string(bad.url.port) + "/";
  ASSERT_TRUE(WaitFor([&] { return Get(bad_url).status == 503; }));
}

TEST_F(NginxControllerTest, StoppedNginxDoesNotStallCallsAndGetsThePushesWhenItResumes) {
  TestBackend a("a"), b("b");
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  std::vector<EndpointConfig> eps = {Endpoint("web")};
  for (int i = 0; i < 50; ++i) eps.push_back(Endpoint("e" + std::to_string(i), "/e" + std::to_string(i) + "/"));
  ApplyAndServe(c, eps, 503);
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  ASSERT_EQ(Get(Url()).body, "a");
  const pid_t pid = c.MasterPid();
  ASSERT_EQ(kill(-pid, SIGSTOP), 0);  // master and workers
  struct Resume {
    pid_t pid;
    ~Resume() { kill(-pid, SIGCONT); }
  } resume{pid};

  const auto start = std::chrono::steady_clock::now();
  eps.push_back(Endpoint("late", "/late/"));
  EXPECT_TRUE(c.ApplySites(eps).ok());
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(c.SetMembers("e" + std::to_string(i), {{b.Address(), 1}}).ok());
  ASSERT_TRUE(c.SetMembers("web", {{b.Address(), 1}}).ok());
  ASSERT_TRUE(c.SetMembers("late", {{a.Address(), 1}}).ok());
  EXPECT_TRUE(c.Flush().ok());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(1000)) << "one bounded try, not one timeout per push";

  kill(-pid, SIGCONT);
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(c.Flush().ok());
    return Get(Url("/late/")).body == "a" && Get(Url()).body == "b";
  }));
  EXPECT_EQ(Get(Url("/e7/")).body, "b");
  EXPECT_GE(events_.Count("error"), 1);
}

TEST_F(NginxControllerTest, LogsRotateBySizeAndTheTailerCountsEveryLine) {
  TestBackend a("a");
  // Workers (nobody, the master being root) reopen the logs themselves: they
  // must reach the prefix, as they do under /var/lib/reactor.
  chmod(dir_.c_str(), 0755);
  settings_.log_max_bytes = 4096;
  LocalNginxController& c = NewController();
  ASSERT_TRUE(c.Start().ok());
  ApplyAndServe(c, {Endpoint("web")}, 503);
  ASSERT_TRUE(c.SetMembers("web", {{a.Address(), 1}}).ok());
  const std::string log = c.AccessLogPath();
  RealFileSystem real;
  LogTailer::Options from_start;
  from_start.start_at_end = false;
  LogTailer tailer(log, real, from_start);
  size_t lines = 0;
  auto tail = [&] { lines += tailer.ReadNewLines([](std::string_view) {}); };
  tail();
  const size_t before = lines;  // ApplyAndServe's requests
  int requests = 0;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(WaitFor([&] {
      EXPECT_EQ(Get(Url()).status, 200);
      ++requests;
      tail();
      std::error_code ec;
      return fs::file_size(log, ec) > 4096;
    })) << "round "
        << round << ": " << requests << " requests";
    ASSERT_TRUE(c.Flush().ok());
    EXPECT_TRUE(fs::exists(log + ".1"));
    for (int i = 0; i < 5; ++i) {  // some land in the renamed file, before nginx reopens
      EXPECT_EQ(Get(Url()).status, 200);
      ++requests;
      tail();
    }
  }
  ASSERT_TRUE(WaitFor([&] {
    tail();
    return lines - before >= static_cast<size_t>(requests);
  })) << lines - before
      << " lines for " << requests << " requests";
  EXPECT_EQ(lines - before, static_cast<size_t>(requests));
  EXPECT_GE(tailer.Rotations(), 3u);
  EXPECT_LE(fs::file_size(log + ".1"), 4096u + 4096u) << "bounded";
  EXPECT_GE(events_.Count("nginx"), 3);
}

}  // namespace
}  // namespace reactor
