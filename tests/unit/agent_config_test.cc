#include "agent/common/agent_config.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>

#include <cstdlib>
#include <gtest/gtest.h>

namespace reactor {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const Result<AgentConfig>& r) { return r.ok() ? "<ok>" : r.status().message(); }

TEST(AgentConfig, EmptyFileGivesSpecDefaults) {
  auto r = ParseAgentConfig("agent.conf", "");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const AgentConfig& c = *r;
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(c.name, host);
  EXPECT_FALSE(c.listen.IsUnix());
  EXPECT_EQ(c.listen.ToString(), "127.0.0.1:7070");
  EXPECT_EQ(c.token_file, "/etc/reactor/token");
  EXPECT_EQ(c.state.kind, AgentConfig::State::Kind::kSqlite);
  EXPECT_EQ(c.state.ToString(), "sqlite:/var/lib/reactor/state.db");
  EXPECT_EQ(c.state_dir, "/var/lib/reactor");
  EXPECT_EQ(c.endpoints_dir, "");
  EXPECT_EQ(c.interval, Duration(1000));
  EXPECT_EQ(c.slots, 1000);
  EXPECT_EQ(c.nginx.mode, NginxSettings::Mode::kManaged);
  EXPECT_EQ(c.nginx.prefix, "/var/lib/reactor/nginx");
  EXPECT_EQ(c.nginx.binary, "/usr/sbin/nginx");
  EXPECT_EQ(c.nginx.conf_dir, "/etc/nginx/conf.d");
  EXPECT_EQ(c.nginx.template_dir, "");
  EXPECT_EQ(c.nginx.reload_delay, Duration(200));
  EXPECT_EQ(c.nginx.upstreams, NginxSettings::Upstreams::kDynamic);
  EXPECT_EQ(c.docker.socket, "/var/run/docker.sock");
  EXPECT_EQ(c.docker.network, AgentConfig::DockerCloud::Network::kBridge);
  EXPECT_EQ(c.docker.host_ip, "127.0.0.1");
  EXPECT_EQ(c.docker.port_range.lo, 20000);
  EXPECT_EQ(c.docker.port_range.hi, 29999);
  EXPECT_EQ(c.process.port_range.lo, 30000);
  EXPECT_EQ(c.process.port_range.hi, 39999);
  EXPECT_EQ(c.process.log_dir, "/var/log/reactor/instances");
}

// SPEC.md §3's block, comments included, parses to the defaults.
TEST(AgentConfig, ParsesSpecExample) {
  auto r = ParseAgentConfig("agent.conf", R"([agent]
listen = 127.0.0.1:7070      ; REST API; also accepts unix:/path
token_file = /etc/reactor/token   ; created (0600, random) if missing; clients send it as a bearer token
state = sqlite:/var/lib/reactor/state.db   ; or etcd://h1:2379,h2:2379,h3:2379
endpoints_dir =              ; optional: every *.conf in it is managed declaratively
interval = 1s                ; reconcile period
slots = 1000                 ; scheduling slots this host offers

[nginx]
mode = managed               ; managed: the agent runs its own nginx under `prefix`
                             ; system: it writes into conf_dir and reloads the system nginx
prefix = /var/lib/reactor/nginx
binary = /usr/sbin/nginx
conf_dir = /etc/nginx/conf.d ; system mode only
template_dir =               ; overrides templates/
reload_delay = 200ms         ; coalesce changes into one reload
upstreams = dynamic           ; dynamic: membership changes go live through the lua balancer, no reload
                             ; reload: classic server lines + reload (stock nginx without the lua module)

[cloud:docker]
socket = /var/run/docker.sock
network = bridge             ; bridge: publish the container port on host_ip; host: give the container a port from port_range in $PORT
host_ip = 127.0.0.1
port_range = 20000-29999

[cloud:process]
port_range = 30000-39999
log_dir = /var/log/reactor/instances
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(SerializeAgentConfig(*r), SerializeAgentConfig(DefaultAgentConfig()));
}

TEST(AgentConfig, Overrides) {
  // A bare binary name is looked up in PATH at config time (execv does not).
  setenv("PATH", "/usr/local/bin:/usr/sbin:/usr/bin", 1);
  auto r = ParseAgentConfig("agent.conf", R"([agent]
name = host-1.example
listen = unix:/run/reactor/api.sock
state = etcd://10.0.0.1:2379, etcd2.internal:2379,[::1]:2379
state_dir = /tmp/reactor-test
endpoints_dir = /etc/reactor/endpoints.d
interval = 250ms
slots = 0
[nginx]
mode = system
binary = nginx
template_dir = /etc/reactor/templates
reload_delay = 0
upstreams = reload
[cloud:docker]
network = host
host_ip = ::1
port_range = 40000-40010
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const AgentConfig& c = *r;
  EXPECT_EQ(c.name, "host-1.example");
  EXPECT_TRUE(c.listen.IsUnix());
  EXPECT_EQ(c.listen.unix_path, "/run/reactor/api.sock");
  EXPECT_EQ(c.state.kind, AgentConfig::State::Kind::kEtcd);
  EXPECT_EQ(c.state.etcd_endpoints, (std::vector<std::string>{"10.0.0.1:2379", "etcd2.internal:2379", "[::1]:2379"}));
  EXPECT_EQ(c.state_dir, "/tmp/reactor-test");
  EXPECT_EQ(c.endpoints_dir, "/etc/reactor/endpoints.d");
  EXPECT_EQ(c.interval, Duration(250));
  EXPECT_EQ(c.slots, 0);
  EXPECT_EQ(c.nginx.mode, NginxSettings::Mode::kSystem);
  EXPECT_EQ(c.nginx.binary, "/usr/sbin/nginx");
  EXPECT_EQ(c.nginx.reload_delay, Duration(0));
  EXPECT_EQ(c.nginx.upstreams, NginxSettings::Upstreams::kReload);
  EXPECT_EQ(c.docker.network, AgentConfig::DockerCloud::Network::kHost);
  EXPECT_EQ(c.docker.host_ip, "::1");
  EXPECT_EQ(c.docker.port_range.hi, 40010);

  // Round trip.
  auto again = ParseAgentConfig("x", SerializeAgentConfig(c));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(SerializeAgentConfig(*again), SerializeAgentConfig(c));

  auto tcp = ParseAgentConfig("agent.conf", "[agent]\nlisten = [::1]:8080\n");
  ASSERT_TRUE(tcp.ok()) << tcp.status().message();
  EXPECT_EQ(tcp->listen.host, "[::1]");
  EXPECT_EQ(tcp->listen.port, 8080);
}

TEST(AgentConfig, RejectsBadValuesWithFileLineSectionKey) {
  struct Case {
    const char* section;
    const char* key;
    const char* value;
  } cases[] = {
      {"agent", "name", ""},
      {"agent", "name", "-host"},
      {"agent", "name", "a b"},
      {"agent", "listen", "7070"},
      {"agent", "listen", "127.0.0.1:0"},
      {"agent", "listen", "127.0.0.1:70000"},
      {"agent", "listen", "unix:relative.sock"},
      {"agent", "listen", "bad_host:80"},
      {"agent", "token_file", "token"},
      {"agent", "token_file", ""},
      {"agent", "state", "mysql://x"},
      {"agent", "state", "sqlite:state.db"},
      {"agent", "state", "etcd://"},
      {"agent", "state", "etcd://h1:2379,"},
      {"agent", "state_dir", "var/lib"},
      {"agent", "endpoints_dir", "endpoints"},
      {"agent", "interval", "50ms"},
      {"agent", "interval", "2m"},
      {"agent", "interval", "often"},
      {"agent", "slots", "-1"},
      {"agent", "slots", "many"},
      {"agent", "slots", "1000001"},
      {"nginx", "mode", "auto"},
      {"nginx", "prefix", "nginx"},
      {"nginx", "prefix", "/var/lib/$x"},
      {"nginx", "binary", "bin/nginx"},
      {"nginx", "binary", "no-such-nginx-binary"},
      {"nginx", "conf_dir", "/etc/nginx/../x"},
      {"nginx", "template_dir", "templates"},
      {"nginx", "reload_delay", "11s"},
      {"nginx", "upstreams", "lua"},
      {"cloud:docker", "socket", "docker.sock"},
      {"cloud:docker", "network", "overlay"},
      {"cloud:docker", "host_ip", "localhost"},
      {"cloud:docker", "port_range", "20000"},
      {"cloud:docker", "port_range", "0-10"},
      {"cloud:docker", "port_range", "30-20"},
      {"cloud:process", "port_range", "1-70000"},
      {"cloud:process", "log_dir", "logs"},
  };
  for (const auto& c : cases) {
    std::string text = std::string("# agent\n\n[") + c.section + "]\n" + c.key + " = " + c.value + "\n";
    auto r = ParseAgentConfig("/etc/reactor/agent.conf", text);
    ASSERT_FALSE(r.ok()) << "[" << c.section << "] " << c.key << " = " << c.value << " was accepted";
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_THAT(r.status().message(),
                HasSubstr(std::string("/etc/reactor/agent.conf: line 4: [") + c.section + "] " + c.key + ": "))
        << c.value;
  }
}

TEST(AgentConfig, CollectsEveryError) {
  auto r = ParseAgentConfig("a.conf", R"([agent]
slots = lots
colour = blue
slots = 3
[nginx]
mode = auto
[ngnix]
mode = system
garbage
)");
  EXPECT_EQ(ErrorOf(r),
            "a.conf: line 9: expected 'key = value', '[section]' or a comment, got 'garbage'\n"
            "a.conf: line 7: [ngnix]: unknown section (expected one of [agent], [nginx], [cloud:docker], "
            "[cloud:process])\n"
            "a.conf: line 2: [agent] slots: 'lots' is not an integer\n"
            "a.conf: line 3: [agent] colour: unknown key\n"
            "a.conf: line 4: [agent] slots: duplicate key (first set on line 2)\n"
            "a.conf: line 6: [nginx] mode: 'auto' is not managed or system");
}

TEST(AgentConfig, PortRangesOfTheTwoCloudsMustNotOverlap) {
  auto r = ParseAgentConfig("a.conf", "[cloud:process]\nport_range = 29000-31000\n");
  EXPECT_EQ(ErrorOf(r),
            "a.conf: line 2: [cloud:process] port_range: 29000-31000 overlaps the port_range of [cloud:docker] "
            "(20000-29999)");
}

TEST(AgentConfig, LoadFromFile) {
  char dir_template[] = "/tmp/agent_config_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  std::string path = dir + "/agent.conf";
  {
    std::ofstream out(path);
    out << "[agent]\nslots = 12\n[nginx]\nreload_delay = soon\n";
  }
  auto r = LoadAgentConfig(path);
  EXPECT_EQ(ErrorOf(r), path + ": line 4: [nginx] reload_delay: 'soon' is not a duration (e.g. 200ms, 1s, 5m)");
  {
    std::ofstream out(path);
    out << "[agent]\nslots = 12\n";
  }
  r = LoadAgentConfig(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->slots, 12);
  std::remove(path.c_str());
  rmdir(dir.c_str());

  r = LoadAgentConfig(dir + "/missing.conf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_THAT(r.status().message(), HasSubstr(dir + "/missing.conf"));
}

TEST(AgentConfig, IniReaderRules) {
  IniDocument doc = ParseIniText(
      "\xEF\xBB\xBF; comment\r\n[a]\r\nk = v ; c\r\nsemi = x;y\r\nmulti = one\r\n  two ; c\r\n\r\n  three\r\n"
      "# c\nempty =\n[ b ]\nk2=  spaced  value  \n");
  ASSERT_TRUE(doc.errors.empty()) << doc.errors[0].Format();
  ASSERT_EQ(doc.entries.size(), 5u);
  EXPECT_EQ(doc.entries[0].value, "v");
  EXPECT_EQ(doc.entries[0].line, 3);
  EXPECT_EQ(doc.entries[1].value, "x;y");
  EXPECT_EQ(doc.entries[2].value, "one\ntwo\nthree");
  EXPECT_EQ(doc.entries[3].value, "");
  EXPECT_EQ(doc.entries[4].section, "b");
  EXPECT_EQ(doc.entries[4].value, "spaced  value");
  EXPECT_EQ(doc.entries[4].line, 12);
  EXPECT_EQ(FormatIniEntry("k", "a\nb"), "k = a\n    b\n");
  EXPECT_EQ(FormatIniEntry("k", ""), "k =\n");
  EXPECT_EQ(CanonicalIniValue("  a \n\n  b  "), "a\nb");
  EXPECT_EQ(IniValueProblem("a;b"), "");
  EXPECT_NE(IniValueProblem("a ;b"), "");
  EXPECT_NE(IniValueProblem(";b"), "");
  EXPECT_NE(IniValueProblem("a\n#b"), "");
  EXPECT_NE(IniValueProblem(std::string("a\0b", 3)), "");
}

}  // namespace
}  // namespace reactor
