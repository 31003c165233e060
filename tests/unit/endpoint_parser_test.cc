#include "agent/endpoint/endpoint_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace reactor {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// SPEC.md §4's example, as written there except for the `KEY=value, ...`
// placeholders (a literal "..." is not KEY=value).
const char kSpecExample[] = R"([endpoint]
url = http://:8080/          ; where nginx listens: scheme://[host][:port][/path]
port = 8000                  ; the port the application listens on inside an instance
cloud = process              ; process | docker | static
static_instances =           ; host:port list, for cloud = static (and extra backends otherwise)
weight = 1

[scaling]
min_instances = 1
max_instances = 1
rules =                      ; e.g. 5 < rate < 20, response < 800ms
ramp_limit = 5               ; launches or removals per round
window = 5s                  ; metrics averaging window
scale_down_delay = 30s       ; a scale-down needs every target in this window to agree
drain_timeout = 60s          ; a removed instance is deleted once idle, or after this

[health]
path = /                     ; HTTP GET; empty = TCP connect only
interval = 1s
timeout = 1s
rise = 1                     ; successes before an instance takes traffic
fall = 3                     ; failures before it is taken out and replaced

[cloud:process]
command = /usr/bin/python3 -m http.server ${PORT}
environment = KEY=value, KEY2=value2
working_dir =
slots = 1

[cloud:docker]
image = myapp:1
command =                    ; optional override
environment = KEY=value
user =
mem_limit = 0                ; bytes; accepts k/m/g
dns =
hostname =
slots = 10

[loadbalancer:nginx]
balance = round_robin        ; round_robin | least_conn | ip_hash
keepalive = 0                ; idle upstream connections kept per worker
ssl_certificate =            ; paths; both set = TLS on the listen port
ssl_key =
redirect =                   ; 301 target when no instance is healthy (else 503)
)";

const char kProcess[] = R"([endpoint]
url = http://:8080/
cloud = process
[cloud:process]
command = /usr/bin/python3 -m http.server ${PORT}
)";

// Parses kProcess with `extra` appended (sections may repeat).
Result<EndpointConfig> WithExtra(const std::string& extra) { return ParseEndpointIni("web", kProcess + extra); }

template <typename T>
std::string ErrorOf(const Result<T>& r) {
  return r.ok() ? "<ok>" : r.status().message();
}

TEST(EndpointParser, ParsesSpecExample) {
  auto r = ParseEndpointIni("web", kSpecExample);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const EndpointConfig& c = *r;
  EXPECT_EQ(c.name, "web");
  EXPECT_EQ(c.url.scheme, "http");
  EXPECT_EQ(c.url.host, "");
  EXPECT_EQ(c.url.port, 8080);
  EXPECT_EQ(c.url.path, "/");
  EXPECT_EQ(c.port, 8000);
  EXPECT_EQ(c.cloud, CloudKind::kProcess);
  EXPECT_TRUE(c.static_instances.empty());
  EXPECT_EQ(c.scaling.rules, "");
  EXPECT_EQ(c.scaling.window, Duration(5000));
  EXPECT_EQ(c.scaling.drain_timeout, Duration(60000));
  EXPECT_EQ(c.health.path, "/");
  EXPECT_EQ(c.health.fall, 3);
  EXPECT_EQ(c.process.command, "/usr/bin/python3 -m http.server ${PORT}");
  ASSERT_EQ(c.process.environment.size(), 2u);
  EXPECT_EQ(c.process.environment[1], std::make_pair(std::string("KEY2"), std::string("value2")));
  EXPECT_EQ(c.docker.image, "myapp:1");
  EXPECT_EQ(c.docker.slots, 10);
  EXPECT_EQ(c.lb.balance, Balance::kRoundRobin);
  EXPECT_FALSE(c.TlsEnabled());
}

TEST(EndpointParser, ParsesDockerAndStaticExamples) {
  auto docker = ParseEndpointIni("api", R"(
[endpoint]
url = https://api.example.com/v1
port = 80
cloud = docker
[scaling]
min_instances = 2
max_instances = 20
rules = 5 < rate < 20, response < 800ms
[cloud:docker]
image = registry.example.com:5000/team/api@sha256:abc123
environment = MODE=prod, EMPTY=
user = 1000:1000
mem_limit = 512m
dns = 10.0.0.2, fd00::53
hostname = api-1
[loadbalancer:nginx]
balance = least_conn
keepalive = 16
ssl_certificate = /etc/ssl/certs/api.pem
ssl_key = /etc/ssl/private/api.key
redirect = https://status.example.com/?from=api&x=%2F
)");
  ASSERT_TRUE(docker.ok()) << docker.status().message();
  EXPECT_EQ(docker->url.port, 443);
  EXPECT_EQ(docker->url.host, "api.example.com");
  EXPECT_EQ(docker->url.path, "/v1/");
  EXPECT_TRUE(docker->TlsEnabled());
  EXPECT_EQ(docker->docker.mem_limit, 512u * 1024 * 1024);
  EXPECT_EQ(docker->docker.dns, (std::vector<std::string>{"10.0.0.2", "fd00::53"}));
  EXPECT_EQ(docker->docker.environment[1].second, "");
  EXPECT_EQ(docker->lb.balance, Balance::kLeastConn);

  auto st = ParseEndpointIni("legacy", R"(
[endpoint]
url = http://10.1.2.3:81/app
cloud = static
static_instances = 10.0.0.5:8000, backend.internal:9000,
  [::1]:7000
)");
  ASSERT_TRUE(st.ok()) << st.status().message();
  ASSERT_EQ(st->static_instances.size(), 3u);
  EXPECT_EQ(st->static_instances[1].ToString(), "backend.internal:9000");
  EXPECT_EQ(st->static_instances[2].ToString(), "[::1]:7000");
  EXPECT_EQ(st->url.ListenKey(), "10.1.2.3:81");
}

TEST(EndpointParser, UrlForms) {
  struct Case {
    const char* url;
    const char* host;
    int port;
    const char* path;
  } cases[] = {
      {"http://", "", 80, "/"},
      {"https://", "", 443, "/"},
      {"http://:8080", "", 8080, "/"},
      {"http://example.com/a/b", "example.com", 80, "/a/b/"},
      {"http://127.0.0.1:9000/x-y_z.~/", "127.0.0.1", 9000, "/x-y_z.~/"},
      {"http://[::1]:8443/", "[::1]", 8443, "/"},
  };
  for (const auto& c : cases) {
    auto r = ParseEndpointIni("web", std::string("[endpoint]\nurl = ") + c.url +
                                         "\n[cloud:process]\ncommand = x\n[loadbalancer:nginx]\n"
                                         "ssl_certificate = /c.pem\nssl_key = /k.pem\n");
    ASSERT_TRUE(r.ok()) << c.url << ": " << r.status().message();
    EXPECT_EQ(r->url.host, c.host) << c.url;
    EXPECT_EQ(r->url.port, c.port) << c.url;
    EXPECT_EQ(r->url.path, c.path) << c.url;
  }
}

// Each bad value must be rejected with a message naming its section and key.
TEST(EndpointParser, RejectsBadValuesNamingSectionAndKey) {
  struct Case {
    const char* section;
    const char* key;
    const char* value;
  } cases[] = {
      {"endpoint", "url", "ftp://x/"},
      {"endpoint", "url", "example.com"},
      {"endpoint", "url", "http://:0/"},
      {"endpoint", "url", "http://:65536/"},
      {"endpoint", "url", "http://:80a/"},
      {"endpoint", "url", "http://:/"},
      {"endpoint", "url", "http://ex_ample.com/"},
      {"endpoint", "url", "http://-bad.com/"},
      {"endpoint", "url", "http://300.1.1.1/"},
      {"endpoint", "url", "http://::1/"},
      {"endpoint", "url", "http://[zz::1]/"},
      {"endpoint", "url", "http://x/a?b"},
      {"endpoint", "url", "http://x/a//b"},
      {"endpoint", "port", "0"},
      {"endpoint", "port", "65536"},
      {"endpoint", "port", "eighty"},
      {"endpoint", "port", ""},
      {"endpoint", "cloud", "kubernetes"},
      {"endpoint", "static_instances", "10.0.0.1"},
      {"endpoint", "static_instances", "10.0.0.1:0"},
      {"endpoint", "static_instances", "a:1,,b:2"},
      {"endpoint", "static_instances", "a:1, a:1"},
      {"endpoint", "weight", "0"},
      {"endpoint", "weight", "1001"},
      {"scaling", "min_instances", "-1"},
      {"scaling", "min_instances", "10001"},
      {"scaling", "max_instances", "10001"},
      {"scaling", "rules", "0 < rate <"},
      {"scaling", "ramp_limit", "0"},
      {"scaling", "ramp_limit", "1001"},
      {"scaling", "window", "500ms"},
      {"scaling", "window", "2h"},
      {"scaling", "window", "soon"},
      {"scaling", "scale_down_delay", "-1s"},
      {"scaling", "scale_down_delay", "25h"},
      {"scaling", "drain_timeout", "x"},
      {"health", "path", "health"},
      {"health", "path", "/a b"},
      {"health", "path", "/a%zz"},
      {"health", "interval", "50ms"},
      {"health", "timeout", "5ms"},
      {"health", "rise", "0"},
      {"health", "fall", "101"},
      {"cloud:process", "environment", "1KEY=v"},
      {"cloud:process", "environment", "KEY"},
      {"cloud:process", "environment", "A=1, A=2"},
      {"cloud:process", "environment", "K-Y=1"},
      {"cloud:process", "working_dir", "relative/dir"},
      {"cloud:process", "working_dir", "/srv/../etc"},
      {"cloud:process", "slots", "100001"},
      {"cloud:process", "slots", "-1"},
      {"cloud:docker", "image", "my image"},
      {"cloud:docker", "image", "-image"},
      {"cloud:docker", "image", "a/../../containers/x"},
      {"cloud:docker", "image", "app..1"},
      {"cloud:docker", "image", "team//app"},
      {"cloud:docker", "image", "team/.hidden"},
      {"cloud:docker", "image", "team/"},
      {"cloud:docker", "user", "root;x"},
      {"cloud:docker", "mem_limit", "lots"},
      {"cloud:docker", "mem_limit", "1m"},
      {"cloud:docker", "dns", "8.8.8"},
      {"cloud:docker", "dns", "dns.google"},
      {"cloud:docker", "hostname", "a_b"},
      {"cloud:docker", "hostname", "-a"},
      {"cloud:docker", "slots", "x"},
      {"loadbalancer:nginx", "balance", "random"},
      {"loadbalancer:nginx", "keepalive", "10001"},
      {"loadbalancer:nginx", "ssl_certificate", "relative.pem"},
      {"loadbalancer:nginx", "ssl_key", "/etc/../key"},
      {"loadbalancer:nginx", "redirect", "ftp://x/"},
      {"loadbalancer:nginx", "redirect", "https:///path"},
      {"loadbalancer:nginx", "redirect", "/relative"},
  };
  for (const auto& c : cases) {
    std::string text = std::string(kProcess) + "[" + c.section + "]\n" + c.key + " = " + c.value + "\n";
    auto r = ParseEndpointIni("web", text);
    ASSERT_FALSE(r.ok()) << "[" << c.section << "] " << c.key << " = " << c.value << " was accepted";
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_THAT(r.status().message(), HasSubstr(std::string("[") + c.section + "] " + c.key + ": ")) << c.value;
    EXPECT_THAT(r.status().message(), HasSubstr("line ")) << c.value;
  }
}

TEST(EndpointParser, RefusesNginxInjection) {
  const char* attempts[][3] = {
      {"endpoint", "url", "http://x;/"},
      {"endpoint", "url", "http://x/a;return"},
      {"endpoint", "url", "http://x/{}"},
      {"endpoint", "url", "http://x/$host"},
      {"endpoint", "url", "http://x/a\"b"},
      {"endpoint", "url", "http://x/a'b"},
      {"endpoint", "url", "http://x/../etc"},
      {"endpoint", "url", "http://x/a\\b"},
      {"endpoint", "url", "http://x}/"},
      {"endpoint", "static_instances", "a;b:80"},
      {"endpoint", "static_instances", "a:80;"},
      {"endpoint", "static_instances", "a{b}:80"},
      {"endpoint", "static_instances", "$host:80"},
      {"loadbalancer:nginx", "redirect", "https://x/;return"},
      {"loadbalancer:nginx", "redirect", "https://x/$request_uri"},
      {"loadbalancer:nginx", "redirect", "https://x/{"},
      {"loadbalancer:nginx", "redirect", "https://x/\"a"},
      {"loadbalancer:nginx", "redirect", "https://x/'a"},
      {"loadbalancer:nginx", "redirect", "https://x/a\\b"},
      {"loadbalancer:nginx", "redirect", "https://x/a b"},
      {"loadbalancer:nginx", "redirect", "https://x/#frag"},
      {"loadbalancer:nginx", "ssl_certificate", "/a;b"},
      {"loadbalancer:nginx", "ssl_certificate", "/etc/ssl/a b.pem"},
      {"loadbalancer:nginx", "ssl_certificate", "/etc/$x"},
      {"loadbalancer:nginx", "ssl_key", "/etc/{x}"},
      {"loadbalancer:nginx", "ssl_key", "/../../etc/shadow"},
      {"health", "path", "/a;b"},
      {"health", "path", "/$x"},
      {"health", "path", "/{"},
      {"health", "path", "/a\"b"},
      {"health", "path", "/../x"},
  };
  for (const auto& a : attempts) {
    std::string text = std::string(kProcess) + "[" + a[0] + "]\n" + a[1] + " = " + a[2] + "\n";
    auto r = ParseEndpointIni("web", text);
    EXPECT_FALSE(r.ok()) << a[1] << " = " << a[2] << " was accepted";
    // Through `reactor set` too, where the value does not pass the INI reader.
    auto base = ParseEndpointIni("web", kProcess);
    ASSERT_TRUE(base.ok());
    auto s = SetEndpointKey(*base, a[0], a[1], a[2]);
    EXPECT_FALSE(s.ok()) << "set " << a[1] << " " << a[2] << " was accepted";
  }
  // Newlines cannot split a value into two nginx lines either.
  auto base = ParseEndpointIni("web", kProcess);
  ASSERT_TRUE(base.ok());
  EXPECT_FALSE(SetEndpointKey(*base, "loadbalancer:nginx", "redirect", "https://x/\nreturn 200").ok());
  EXPECT_FALSE(SetEndpointKey(*base, "health", "path", "/a\n}").ok());
  EXPECT_FALSE(SetEndpointKey(*base, "endpoint", "url", "http://x/\n;").ok());
  EXPECT_FALSE(SetEndpointKey(*base, "cloud:process", "command", "a\nb").ok());
}

TEST(EndpointParser, MinAboveMax) {
  auto r = WithExtra("[scaling]\nmin_instances = 1\nmax_instances = 0\n");
  EXPECT_EQ(ErrorOf(r), "line 8: [scaling] max_instances: 0 is less than min_instances (1)");
  r = WithExtra("[scaling]\nmax_instances = 1\nmin_instances = 3\n");
  EXPECT_EQ(ErrorOf(r), "line 7: [scaling] max_instances: 1 is less than min_instances (3)");
  EXPECT_TRUE(WithExtra("[scaling]\nmin_instances = 0\nmax_instances = 0\n").ok());
}

TEST(EndpointParser, HttpsNeedsCertificates) {
  auto r = ParseEndpointIni("web", "[endpoint]\nurl = https://:443/\n[cloud:process]\ncommand = x\n");
  EXPECT_EQ(ErrorOf(r), "line 2: [endpoint] url: https needs [loadbalancer:nginx] ssl_certificate and ssl_key");
  r = WithExtra("[loadbalancer:nginx]\nssl_certificate = /etc/c.pem\n");
  EXPECT_EQ(ErrorOf(r), "[loadbalancer:nginx] ssl_key: required when ssl_certificate is set");
  r = WithExtra("[loadbalancer:nginx]\nssl_certificate = /etc/c.pem\nssl_key = /etc/k.pem\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->TlsEnabled());  // both set: TLS even for an http url
}

TEST(EndpointParser, RequiredKeysOnlyForTheSelectedCloud) {
  auto r = ParseEndpointIni("web", "[endpoint]\ncloud = static\n");
  EXPECT_EQ(ErrorOf(r), "[endpoint] static_instances: cloud = static needs at least one host:port");
  r = ParseEndpointIni("web", "[endpoint]\ncloud = static\nstatic_instances =\n");
  EXPECT_EQ(ErrorOf(r), "line 3: [endpoint] static_instances: cloud = static needs at least one host:port");
  r = ParseEndpointIni("web", "[endpoint]\ncloud = process\n");
  EXPECT_EQ(ErrorOf(r), "[cloud:process] command: required when cloud = process");
  r = ParseEndpointIni("web", "[endpoint]\ncloud = docker\n[cloud:docker]\nimage =\n");
  EXPECT_EQ(ErrorOf(r), "line 4: [cloud:docker] image: required when cloud = docker");
  // Other clouds' sections may be present and incomplete.
  r = ParseEndpointIni("web",
                       "[endpoint]\ncloud = static\nstatic_instances = 127.0.0.1:8000\n"
                       "[cloud:docker]\nslots = 2\n[cloud:process]\nslots = 3\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->Slots(), 0);
}

// Only two values the user wrote can conflict: a default follows the
// user's value instead of contradicting it.
TEST(EndpointParser, DefaultsFollowWhatTheUserWrote) {
  auto r = WithExtra("[health]\ninterval = 300ms\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->health.timeout, Duration(300)) << "timeout defaults to min(1s, interval)";
  r = WithExtra("[health]\ninterval = 5s\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->health.timeout, Duration(1000));
  r = WithExtra("[scaling]\nmin_instances = 3\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scaling.max_instances, 3) << "max_instances defaults to max(1, min_instances)";
  r = WithExtra("[scaling]\nmax_instances = 0\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scaling.min_instances, 0) << "min_instances defaults to min(1, max_instances)";
}

TEST(EndpointParser, SetOnStoredTextKeepsDefaultsFollowing) {
  const std::string ini = "[endpoint]\nurl = http://:8080/\n[cloud:process]\ncommand = x ${PORT}\n";
  auto r = SetEndpointIniKey("web", ini, "health", "interval", "300ms");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->first.health.interval, Duration(300));
  EXPECT_EQ(r->first.health.timeout, Duration(300));
  EXPECT_THAT(r->second, HasSubstr("[health]\ninterval = 300ms\n"));
  EXPECT_THAT(r->second, Not(HasSubstr("timeout")));
  // The new text reads back to the same config.
  auto again = ParseEndpointIni("web", r->second);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->health.timeout, Duration(300));
  // Replacing a key the text has.
  r = SetEndpointIniKey("web", r->second, "endpoint", "url", "http://:9090/");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->first.url.port, 9090);
  EXPECT_THAT(r->second, Not(HasSubstr("8080")));
  // Two values the user wrote still conflict, and unknown keys are refused.
  auto bad = SetEndpointIniKey("web", ini + "[health]\ninterval = 2s\n", "health", "timeout", "3s");
  EXPECT_THAT(ErrorOf(bad), HasSubstr("[health] timeout: 3s is longer than interval (2s)"));
  EXPECT_FALSE(SetEndpointIniKey("web", ini, "health", "nope", "1").ok());
  // The key being set is the one blamed.
  const std::string scaled = ini + "[scaling]\nmin_instances = 1\nmax_instances = 3\n";
  EXPECT_EQ(ErrorOf(SetEndpointIniKey("web", scaled, "scaling", "max_instances", "0")),
            "[scaling] max_instances: 0 is less than min_instances (1)");
  EXPECT_EQ(ErrorOf(SetEndpointIniKey("web", scaled, "scaling", "min_instances", "5")),
            "[scaling] min_instances: 5 is more than max_instances (3)");
  EXPECT_FALSE(SetEndpointIniKey("web", ini, "nope", "path", "/").ok());
}

TEST(EndpointParser, HealthTimeoutMayNotExceedInterval) {
  auto r = WithExtra("[health]\ninterval = 500ms\ntimeout = 1s\n");
  EXPECT_EQ(ErrorOf(r), "line 8: [health] timeout: 1s is longer than interval (500ms)");
  EXPECT_TRUE(WithExtra("[health]\ninterval = 500ms\ntimeout = 500ms\npath =\n").ok());
}

TEST(EndpointParser, UnknownSectionsAndKeys) {
  auto r = WithExtra("[scalling]\nmin_instances = 1\nmax = 3\n[scaling]\nmaximum = 2\n");
  std::string msg = ErrorOf(r);
  EXPECT_THAT(msg, HasSubstr("line 6: [scalling]: unknown section (expected one of [endpoint], [scaling]"));
  EXPECT_THAT(msg, HasSubstr("line 10: [scaling] maximum: unknown key"));
  EXPECT_EQ(msg.find("min_instances"), std::string::npos) << "keys of an unknown section are not repeated";
}

TEST(EndpointParser, DuplicateKeys) {
  auto r = WithExtra("[scaling]\nmax_instances = 2\nmax_instances = 3\n");
  EXPECT_EQ(ErrorOf(r), "line 8: [scaling] max_instances: duplicate key (first set on line 7)");
  r = ParseEndpointIni("web", std::string(kProcess) + "[endpoint]\nurl = http://:9000/\n");
  EXPECT_EQ(ErrorOf(r), "line 7: [endpoint] url: duplicate key (first set on line 2)");
}

TEST(EndpointParser, CollectsEveryError) {
  auto r = ParseEndpointIni("Bad Name", R"([endpoint]
url = gopher://x/
port = 0
this line is wrong
[scaling]
min_instances = 5
max_instances = 2
window = 0s
)");
  std::string msg = ErrorOf(r);
  EXPECT_THAT(msg, HasSubstr("name: 'Bad Name' must match"));
  EXPECT_THAT(msg, HasSubstr("line 2: [endpoint] url: scheme 'gopher' is not http or https"));
  EXPECT_THAT(msg, HasSubstr("line 3: [endpoint] port: 0 is out of range [1, 65535]"));
  EXPECT_THAT(msg, HasSubstr("line 4: expected 'key = value'"));
  EXPECT_THAT(msg, HasSubstr("line 7: [scaling] max_instances: 2 is less than min_instances (5)"));
  EXPECT_THAT(msg, HasSubstr("line 8: [scaling] window: 0s is out of range [1s, 60m]"));
  EXPECT_THAT(msg, HasSubstr("[cloud:process] command: required when cloud = process"));
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 6) << msg;
}

TEST(EndpointParser, SyntaxErrors) {
  EXPECT_THAT(ErrorOf(ParseEndpointIni("web", "url = http://\n")),
              HasSubstr("line 1: url: comes before any [section]"));
  EXPECT_THAT(ErrorOf(ParseEndpointIni("web", "[endpoint\n")), HasSubstr("line 1: '[' without a closing ']'"));
  EXPECT_THAT(ErrorOf(ParseEndpointIni("web", "[endpoint]\n= 3\n")), HasSubstr("line 2: a key is missing"));
}

TEST(EndpointParser, Names) {
  EXPECT_TRUE(IsValidEndpointName("a"));
  EXPECT_TRUE(IsValidEndpointName("0web_app-2"));
  EXPECT_TRUE(IsValidEndpointName(std::string(63, 'a')));
  EXPECT_FALSE(IsValidEndpointName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidEndpointName(""));
  EXPECT_FALSE(IsValidEndpointName("-web"));
  EXPECT_FALSE(IsValidEndpointName("_web"));
  EXPECT_FALSE(IsValidEndpointName("Web"));
  EXPECT_FALSE(IsValidEndpointName("web.app"));
  EXPECT_FALSE(IsValidEndpointName("web/../x"));
  EXPECT_FALSE(ParseEndpointIni("We b", kProcess).ok());
}

TEST(EndpointParser, RulesKeepSemicolonsAndSpanLines) {
  auto r = WithExtra("[scaling]\nrules = 5 < rate < 20; response < 800ms\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scaling.rules, "5 < rate < 20; response < 800ms");

  r = WithExtra(
      "[scaling]\nrules =\n    5 < rate < 20   ; a comment\n    # a rule comment line\n\n"
      "    response < 800ms\nramp_limit = 2\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scaling.rules, "5 < rate < 20\nresponse < 800ms");
  EXPECT_EQ(r->scaling.ramp_limit, 2);

  r = WithExtra("[scaling]\nrules = 0 < rate <\n");
  std::string msg = ErrorOf(r);
  EXPECT_THAT(msg, HasSubstr("line 7: [scaling] rules: "));
  EXPECT_THAT(msg, HasSubstr("^")) << "the rule parser's caret is passed on";
}

TEST(EndpointParser, LongLinesAreNotTruncated) {
  std::string env;
  for (int i = 0; i < 40; ++i) env += (i ? ", " : "") + std::string("VARIABLE_") + std::to_string(i) + "=value";
  ASSERT_GT(env.size(), 400u);
  auto r = WithExtra("[cloud:process]\nenvironment = " + env + "\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->process.environment.size(), 40u);
}

EndpointConfig FullConfig() {
  auto r = ParseEndpointIni("full", R"([endpoint]
url = https://[::1]:8443/app/
port = 9000
cloud = docker
static_instances = 10.0.0.1:80, extra.example:81
weight = 7
[scaling]
min_instances = 2
max_instances = 9
rules = 0.25 < rate < 1
  response < 800ms; errors < 1
ramp_limit = 3
window = 1500ms
scale_down_delay = 2m
drain_timeout = 0s
placement = pack
[health]
path = /healthz?full=1&x=%20
interval = 2s
timeout = 250ms
rise = 2
fall = 4
[cloud:process]
command = /bin/app --port=${PORT} --name "${NAME}"
environment = A=1, B=x=y, C=
working_dir = /srv/my app
slots = 0
[cloud:docker]
image = app:2
command = serve --fast
environment = D=4
user = www-data
mem_limit = 1g
dns = 1.1.1.1
hostname = app.local
slots = 3
[loadbalancer:nginx]
balance = ip_hash
keepalive = 32
ssl_certificate = /etc/ssl/app.pem
ssl_key = /etc/ssl/app.key
redirect = https://maintenance.example/
)");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : EndpointConfig{};
}

TEST(EndpointParser, RoundTrips) {
  for (const EndpointConfig& c :
       {FullConfig(), *ParseEndpointIni("web", kProcess), *ParseEndpointIni("web", kSpecExample)}) {
    std::string text = SerializeEndpointIni(c);
    auto again = ParseEndpointIni(c.name, text);
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << text;
    EXPECT_TRUE(*again == c) << text;
    EXPECT_EQ(SerializeEndpointIni(*again), text);
  }
}

TEST(EndpointParser, SerializesEveryKey) {
  std::string text = SerializeEndpointIni(FullConfig());
  EXPECT_THAT(text, HasSubstr("[endpoint]\nurl = https://[::1]:8443/app/\nport = 9000\ncloud = docker\n"));
  EXPECT_THAT(text, HasSubstr("rules = 0.25 < rate < 1\n    response < 800ms; errors < 1\n"));
  EXPECT_THAT(text, HasSubstr("\n[loadbalancer:nginx]\nbalance = ip_hash\n"));
  auto minimal = ParseEndpointIni("web", kProcess);
  ASSERT_TRUE(minimal.ok());
  EXPECT_THAT(SerializeEndpointIni(*minimal), HasSubstr("[cloud:docker]\nimage =\ncommand =\n"));
  size_t keys = 0;
  for (const auto& [section, list] : EndpointSections(FullConfig())) keys += list.size();
  EXPECT_EQ(keys, 42u);
}

TEST(EndpointParser, GetKeysAndSections) {
  EndpointConfig c = FullConfig();
  EXPECT_EQ(*GetEndpointKey(c, "scaling", "window"), "1500ms");
  EXPECT_EQ(*GetEndpointKey(c, "endpoint", "static_instances"), "10.0.0.1:80, extra.example:81");
  EXPECT_EQ(*GetEndpointKey(c, "cloud:docker", "mem_limit"), "1073741824");
  auto health = EndpointSectionKeys(c, "health");
  ASSERT_TRUE(health.ok());
  ASSERT_EQ(health->size(), 5u);
  EXPECT_EQ((*health)[0], std::make_pair(std::string("path"), std::string("/healthz?full=1&x=%20")));
  auto bad = GetEndpointKey(c, "scaling", "nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "[scaling] nope: unknown key");
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  bad = GetEndpointKey(c, "scale", "window");
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown section [scale]"));
  EXPECT_FALSE(EndpointSectionKeys(c, "nginx").ok());
  EXPECT_EQ(EndpointSectionNames().size(), 6u);
}

TEST(EndpointParser, SetKeyValidatesLikeAFile) {
  EndpointConfig c = *ParseEndpointIni("web", kProcess);
  auto r = SetEndpointKey(c, "scaling", "max_instances", "4");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scaling.max_instances, 4);
  EXPECT_EQ(r->name, "web");
  EXPECT_EQ(c.scaling.max_instances, 1) << "the input is not changed";

  r = SetEndpointKey(*r, "scaling", "min_instances", "5");
  EXPECT_EQ(ErrorOf(r), "[scaling] max_instances: 4 is less than min_instances (5)");

  r = SetEndpointKey(c, "scaling", "rules", "  5 < rate < 20;response < 1s  ");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scaling.rules, "5 < rate < 20;response < 1s");

  // A value that would not survive being written to a file is refused, not altered.
  r = SetEndpointKey(c, "scaling", "rules", "5 < rate < 20 ; response < 1s");
  EXPECT_THAT(ErrorOf(r), HasSubstr("[scaling] rules: a ';' at the start of a value or after a space"));
  r = SetEndpointKey(c, "scaling", "rules", "rate < 5\n# comment\nrate > 1");
  EXPECT_THAT(ErrorOf(r), HasSubstr("[scaling] rules: a continuation line starting with '#'"));
  r = SetEndpointKey(c, "scaling", "rules", "rate < 5\n  rate > 1\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*ParseEndpointIni("web", SerializeEndpointIni(*r)), *r);

  r = SetEndpointKey(c, "scaling", "rules", "rate <<");
  EXPECT_THAT(ErrorOf(r), HasSubstr("[scaling] rules: "));
  r = SetEndpointKey(c, "endpoint", "cloud", "static");
  EXPECT_EQ(ErrorOf(r), "[endpoint] static_instances: cloud = static needs at least one host:port");
  r = SetEndpointKey(c, "endpoint", "url", "https://");
  EXPECT_THAT(ErrorOf(r), HasSubstr("[endpoint] url: https needs"));

  r = SetEndpointKey(c, "scaling", "maximum", "3");
  EXPECT_EQ(ErrorOf(r), "[scaling] maximum: unknown key");
  EXPECT_TRUE(r.status().IsInvalidArgument());
  r = SetEndpointKey(c, "scale", "max_instances", "3");
  EXPECT_THAT(ErrorOf(r), HasSubstr("unknown section [scale]"));

  r = SetEndpointKey(c, "cloud:docker", "environment", "A=1\nB=2");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->docker.environment.size(), 2u);
  EXPECT_EQ(*GetEndpointKey(*r, "cloud:docker", "environment"), "A=1, B=2");
}

TEST(EndpointConfigNames, KindAndBalance) {
  EXPECT_STREQ(CloudKindName(CloudKind::kProcess), "process");
  EXPECT_STREQ(CloudKindName(CloudKind::kDocker), "docker");
  EXPECT_STREQ(CloudKindName(CloudKind::kStatic), "static");
  EXPECT_STREQ(BalanceName(Balance::kRoundRobin), "round_robin");
  EXPECT_STREQ(BalanceName(Balance::kLeastConn), "least_conn");
  EXPECT_STREQ(BalanceName(Balance::kIpHash), "ip_hash");
}

}  // namespace
}  // namespace reactor
