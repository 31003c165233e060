#include "agent/nginx/nginx_render.h"

#include <gtest/gtest.h>

#include "agent/metrics/log_format.h"

namespace reactor {
namespace {

EndpointConfig Endpoint(const std::string& name, int port, const std::string& path = "/") {
  EndpointConfig e;
  e.name = name;
  e.url.port = port;
  e.url.path = path;
  return e;
}

NginxRenderInput Input(NginxSettings::Upstreams upstreams = NginxSettings::Upstreams::kDynamic) {
  NginxRenderInput in;
  in.upstreams = upstreams;
  in.prefix = "/var/lib/reactor/nginx";
  in.access_log = "/var/lib/reactor/nginx/logs/access.log";
  in.control_socket = "/var/lib/reactor/nginx/control/control.sock";
  in.members_file = "/var/lib/reactor/nginx/members.state";
  in.routes_file = "/var/lib/reactor/nginx/routes.state";
  return in;
}

const NginxTemplates& Templates() {
  static const NginxTemplates t = [] {
    Result<NginxTemplates> r = LoadNginxTemplates("");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : NginxTemplates{};
  }();
  return t;
}

std::map<std::string, std::string> Render(const NginxRenderInput& in) {
  Result<std::map<std::string, std::string>> r = RenderNginxConfig(Templates(), in);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : std::map<std::string, std::string>{};
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) ++n;
  return n;
}

TEST(NginxRender, ManagedModeGivesMainAndSitesWithPathsUnderPrefix) {
  auto files = Render(Input());
  ASSERT_EQ(files.size(), 2u);
  const std::string& main = files.at("nginx.conf");
  EXPECT_NE(main.find("pid /var/lib/reactor/nginx/logs/nginx.pid;"), std::string::npos);
  EXPECT_NE(main.find("error_log /var/lib/reactor/nginx/logs/error.log"), std::string::npos);
  EXPECT_NE(main.find("client_body_temp_path /var/lib/reactor/nginx/temp/client_body;"), std::string::npos);
  EXPECT_NE(main.find("events {"), std::string::npos);
  EXPECT_NE(main.find("include sites.conf;"), std::string::npos);
  EXPECT_NE(main.find("load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"), std::string::npos);
  const std::string& sites = files.at("sites.conf");
  EXPECT_NE(sites.find("log_format reactor '"), std::string::npos);
  EXPECT_NE(sites.find("listen unix:/var/lib/reactor/nginx/control/control.sock;"), std::string::npos);
  EXPECT_NE(sites.find("lua_shared_dict reactor_members"), std::string::npos);
  EXPECT_NE(sites.find("M.load_file(\"/var/lib/reactor/nginx/members.state\")"), std::string::npos);
}

TEST(NginxRender, SystemModeGivesOnlyTheHttpLevelFile) {
  NginxRenderInput in = Input();
  in.mode = NginxSettings::Mode::kSystem;
  in.endpoints = {Endpoint("web", 8080)};
  auto files = Render(in);
  ASSERT_EQ(files.size(), 1u);
  const std::string& conf = files.at("reactor.conf");
  EXPECT_EQ(conf.find("load_module"), std::string::npos);
  EXPECT_EQ(conf.find("events"), std::string::npos);
  EXPECT_NE(conf.find("upstream reactor_route {"), std::string::npos);
  EXPECT_NE(conf.find("listen 8080;"), std::string::npos);
  EXPECT_EQ(conf.find("reactor_web"), std::string::npos) << "routes are pushed, not rendered";
}

TEST(NginxRender, EndpointsSharingHostPortShareOneServer) {
  for (auto mode : {NginxSettings::Upstreams::kDynamic, NginxSettings::Upstreams::kReload}) {
    NginxRenderInput in = Input(mode);
    in.endpoints = {Endpoint("web", 8080, "/"), Endpoint("api", 8080, "/api/"), Endpoint("other", 9090, "/")};
    std::string sites = Render(in).at("sites.conf");
    EXPECT_EQ(Count(sites, "listen 8080;"), 1u);
    EXPECT_EQ(Count(sites, "listen 9090;"), 1u);
    EXPECT_NE(sites.find("location / {"), std::string::npos);
    if (mode == NginxSettings::Upstreams::kDynamic) {
      const std::string routed = sites.substr(0, sites.find("# Control server"));
      EXPECT_EQ(Count(routed, "location / {"), 2u) << "one routed location per server";
      EXPECT_EQ(sites.find("location /api/ {"), std::string::npos);
      continue;
    }
    EXPECT_NE(sites.find("location /api/ {"), std::string::npos);
    // The 8080 server holds both locations.
    size_t s8080 = sites.find("listen 8080;");
    size_t s9090 = sites.find("listen 9090;");
    size_t api = sites.find("location /api/ {");
    EXPECT_TRUE(s8080 < api && (api < s9090 || s9090 < s8080));
  }
}

TEST(NginxRender, HostInListenAndRootFallbackWhenNoEndpointAtSlash) {
  NginxRenderInput in = Input(NginxSettings::Upstreams::kReload);
  EndpointConfig e = Endpoint("api", 8080, "/api/");
  e.url.host = "127.0.0.1";
  in.endpoints = {e};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_NE(sites.find("listen 127.0.0.1:8080;"), std::string::npos);
  EXPECT_NE(sites.find("location / {\n        return 404;"), std::string::npos);
}

TEST(NginxRender, DynamicServerOnAnAddressRoutesItsOwnThenThePortsAnyAddressRoutes) {
  NginxRenderInput in = Input();
  EndpointConfig e = Endpoint("api", 8080, "/api/");
  e.url.host = "127.0.0.1";
  in.endpoints = {e, Endpoint("web", 8081)};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_NE(sites.find("listen 127.0.0.1:8080;"), std::string::npos);
  EXPECT_NE(sites.find("route(\"127.0.0.1:8080\", \"8080\")"), std::string::npos);
  EXPECT_NE(sites.find("route(\"8081\")"), std::string::npos);
  const std::string routed = sites.substr(0, sites.find("# Control server"));
  EXPECT_EQ(routed.find("return 404;"), std::string::npos) << "lua answers 404 for an unrouted path";
}

TEST(NginxRender, DynamicOutputDependsOnlyOnListenPortsAndCertificates) {
  NginxRenderInput a = Input();
  a.endpoints = {Endpoint("web", 8080), Endpoint("api", 8080, "/api/")};
  NginxRenderInput b = Input();
  EndpointConfig changed = Endpoint("web", 8080, "/w/");
  changed.lb.balance = Balance::kIpHash;
  changed.lb.keepalive = 8;
  changed.lb.redirect = "http://example.com/";
  b.endpoints = {changed, Endpoint("new", 8080, "/new/"), Endpoint("api", 8080, "/api/")};
  EXPECT_EQ(Render(a), Render(b)) << "an endpoint added or changed on a listened port needs no reload";
  NginxRenderInput c = a;
  c.endpoints.push_back(Endpoint("other", 9090));
  EXPECT_NE(Render(a), Render(c)) << "a new port does";
  NginxRenderInput d = a;
  d.endpoints[0].lb.ssl_certificate = "/etc/ssl/a.crt";
  d.endpoints[0].lb.ssl_key = "/etc/ssl/a.key";
  d.endpoints[1].lb.ssl_certificate = "/etc/ssl/a.crt";
  d.endpoints[1].lb.ssl_key = "/etc/ssl/a.key";
  EXPECT_NE(Render(a), Render(d)) << "so does a certificate";
}

TEST(NginxRender, DynamicLogFormatNamesTheEndpointThroughTheRoute) {
  NginxRenderInput in = Input();
  in.endpoints = {Endpoint("web", 80)};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_NE(sites.find("log_format reactor '$msec|$reactor_proxy_host|"), std::string::npos);
  EXPECT_NE(sites.find("set $reactor_proxy_host \"-\";"), std::string::npos);
  EXPECT_NE(sites.find("M.load_routes(\"/var/lib/reactor/nginx/routes.state\")"), std::string::npos);
  EXPECT_NE(sites.find("location = /routes {"), std::string::npos);
  std::string reload = Render(Input(NginxSettings::Upstreams::kReload)).at("sites.conf");
  EXPECT_NE(reload.find(std::string("log_format reactor '") + kLogFormat + "';"), std::string::npos);
}

TEST(NginxRender, TlsWhenCertificateAndKeyAreSet) {
  NginxRenderInput in = Input();
  EndpointConfig e = Endpoint("secure", 8443);
  e.url.scheme = "https";
  e.lb.ssl_certificate = "/etc/ssl/web.crt";
  e.lb.ssl_key = "/etc/ssl/web.key";
  in.endpoints = {e};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_NE(sites.find("listen 8443 ssl;"), std::string::npos);
  EXPECT_NE(sites.find("ssl_certificate /etc/ssl/web.crt;"), std::string::npos);
  EXPECT_NE(sites.find("ssl_certificate_key /etc/ssl/web.key;"), std::string::npos);
}

TEST(NginxRender, RefusesTlsDisagreementOnSharedServer) {
  NginxRenderInput in = Input();
  EndpointConfig a = Endpoint("a", 8443, "/");
  a.lb.ssl_certificate = "/c.crt";
  a.lb.ssl_key = "/c.key";
  in.endpoints = {a, Endpoint("b", 8443, "/b/")};
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
}

TEST(NginxRender, RefusesDuplicateNamesAndPaths) {
  NginxRenderInput in = Input();
  in.endpoints = {Endpoint("a", 80), Endpoint("a", 81)};
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
  in.endpoints = {Endpoint("a", 80, "/x/"), Endpoint("b", 80, "/x/")};
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
}

TEST(NginxRender, DynamicBalanceModesStayOutOfTheConfig) {
  NginxRenderInput in = Input();
  EndpointConfig rr = Endpoint("rr", 80, "/rr/");
  EndpointConfig lc = Endpoint("lc", 80, "/lc/");
  lc.lb.balance = Balance::kLeastConn;
  EndpointConfig ih = Endpoint("ih", 80, "/ih/");
  ih.lb.balance = Balance::kIpHash;
  in.endpoints = {rr, lc, ih};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_NE(sites.find("balance_route()"), std::string::npos);
  EXPECT_EQ(Count(sites, "server 0.0.0.1;"), 1u) << "one shared upstream, the lua balancer picks";
  EXPECT_EQ(sites.find("least_conn;"), std::string::npos);
  EXPECT_EQ(sites.find("ip_hash;"), std::string::npos);
}

TEST(NginxRender, ReloadBalanceModesAreNginxDirectives) {
  NginxRenderInput in = Input(NginxSettings::Upstreams::kReload);
  EndpointConfig lc = Endpoint("lc", 80, "/lc/");
  lc.lb.balance = Balance::kLeastConn;
  EndpointConfig ih = Endpoint("ih", 80, "/ih/");
  ih.lb.balance = Balance::kIpHash;
  in.endpoints = {lc, ih};
  in.members["lc"] = {{"127.0.0.1:9001", 1}};
  in.members["ih"] = {{"127.0.0.1:9002", 1}};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_EQ(Count(sites, "least_conn;"), 1u);
  EXPECT_EQ(Count(sites, "ip_hash;"), 1u);
  EXPECT_EQ(sites.find("lua"), std::string::npos);
  EXPECT_EQ(Render(in).at("nginx.conf").find("load_module"), std::string::npos);
}

TEST(NginxRender, KeepaliveAddsHttp11AndClearsConnection) {
  NginxRenderInput in = Input(NginxSettings::Upstreams::kReload);
  EndpointConfig e = Endpoint("web", 80);
  e.lb.keepalive = 16;
  in.endpoints = {e, Endpoint("plain", 81)};
  in.members["web"] = {{"127.0.0.1:9001", 1}};
  in.members["plain"] = {{"127.0.0.1:9002", 1}};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_EQ(Count(sites, "keepalive 16;"), 1u);
  EXPECT_EQ(Count(sites, "proxy_http_version 1.1;"), 1u);
  EXPECT_EQ(Count(sites, "proxy_set_header Connection \"\";"), 1u);
}

TEST(NginxRender, DynamicKeepaliveFollowsTheBalancerAndTheRouteSetsConnection) {
  NginxRenderInput in = Input();
  in.endpoints = {Endpoint("web", 80)};
  std::string sites = Render(in).at("sites.conf");
  size_t ka = sites.find("keepalive 1024;");
  size_t bal = sites.find("balancer_by_lua_block");
  ASSERT_NE(ka, std::string::npos);
  EXPECT_LT(bal, ka) << "keepalive must follow balancer_by_lua";
  EXPECT_NE(sites.find("proxy_http_version 1.1;"), std::string::npos);
  EXPECT_NE(sites.find("proxy_set_header Connection $reactor_connection;"), std::string::npos);
  EXPECT_NE(sites.find("set $reactor_connection \"close\";"), std::string::npos);
}

TEST(NginxRender, ProxyHeadersAndOneRetry) {
  for (auto mode : {NginxSettings::Upstreams::kDynamic, NginxSettings::Upstreams::kReload}) {
    NginxRenderInput in = Input(mode);
    in.endpoints = {Endpoint("web", 80)};
    in.members["web"] = {{"127.0.0.1:9001", 1}};
    std::string sites = Render(in).at("sites.conf");
    const char* pass = mode == NginxSettings::Upstreams::kDynamic ? "proxy_pass http://reactor_route;"
                                                                  : "proxy_pass http://reactor_web;";
    for (const char* line :
         {"proxy_set_header Host $host;", "proxy_set_header X-Real-IP $remote_addr;",
          "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "proxy_set_header X-Forwarded-Proto $scheme;",
          "proxy_next_upstream error timeout;", "proxy_next_upstream_tries 2;",
          "access_log /var/lib/reactor/nginx/logs/access.log reactor;", pass}) {
      EXPECT_NE(sites.find(line), std::string::npos) << line;
    }
  }
}

TEST(NginxRender, DynamicNoMembersAnswerIsLeftToTheRoute) {
  NginxRenderInput in = Input();
  EndpointConfig r = Endpoint("moved", 80, "/moved/");
  r.lb.redirect = "https://example.com/sorry?x=1";
  in.endpoints = {Endpoint("web", 80), r};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_EQ(sites.find("example.com"), std::string::npos) << "the redirect travels with the route";
  // No named location per endpoint: each location costs nginx an SSL context.
  EXPECT_EQ(sites.find("location @"), std::string::npos);
}

TEST(NginxRender, ReloadModeRendersWeightedServerLines) {
  NginxRenderInput in = Input(NginxSettings::Upstreams::kReload);
  in.endpoints = {Endpoint("web", 80)};
  in.members["web"] = {{"127.0.0.1:9002", 3}, {"127.0.0.1:9001", 1}};
  std::string sites = Render(in).at("sites.conf");
  size_t a = sites.find("server 127.0.0.1:9001 weight=1 max_fails=0;");
  size_t b = sites.find("server 127.0.0.1:9002 weight=3 max_fails=0;");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  EXPECT_LT(a, b) << "members are sorted for deterministic output";
}

TEST(NginxRender, ReloadModeNeverRendersAnEmptyUpstream) {
  NginxRenderInput in = Input(NginxSettings::Upstreams::kReload);
  EndpointConfig r = Endpoint("moved", 80, "/moved/");
  r.lb.redirect = "http://example.com/";
  in.endpoints = {Endpoint("web", 80), r};
  in.members["web"] = {};
  std::string sites = Render(in).at("sites.conf");
  EXPECT_EQ(sites.find("upstream "), std::string::npos);
  EXPECT_EQ(sites.find("proxy_pass"), std::string::npos);
  EXPECT_NE(sites.find("return 503;"), std::string::npos);
  EXPECT_NE(sites.find("return 301 http://example.com/;"), std::string::npos);
}

TEST(NginxRender, RefusesUnsafeValues) {
  auto refused = [](const EndpointConfig& e) {
    NginxRenderInput in = Input();
    in.endpoints = {e};
    return RenderNginxConfig(Templates(), in).status().IsInvalidArgument();
  };
  EndpointConfig e = Endpoint("web", 80);
  e.name = "web;evil";
  EXPECT_TRUE(refused(e));
  e.name = "Web";
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 80, "/a; } server { listen 1;");
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 80, "/a$uri/");
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 80);
  e.url.host = "1.2.3.4; include /etc/passwd";
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 80);
  e.lb.redirect = "http://x/; return 200";
  EXPECT_TRUE(refused(e));
  e.lb.redirect = "http://x/$host";
  EXPECT_TRUE(refused(e));
  e.lb.redirect = "javascript:alert(1)";
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 80);
  e.lb.ssl_certificate = "/etc/ssl/a.crt;";
  e.lb.ssl_key = "/etc/ssl/a.key";
  EXPECT_TRUE(refused(e));
  e.lb.ssl_certificate = "relative.crt";
  EXPECT_TRUE(refused(e));
  e.lb.ssl_certificate = "/etc/ssl/a.crt";
  e.lb.ssl_key = "";
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 0);
  EXPECT_TRUE(refused(e));
  e = Endpoint("web", 80);
  e.url.scheme = "gopher";
  EXPECT_TRUE(refused(e));

  NginxRenderInput in = Input(NginxSettings::Upstreams::kReload);
  in.endpoints = {Endpoint("web", 80)};
  in.members["web"] = {{"127.0.0.1:80 down; server evil", 1}};
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
  in.members["web"] = {{"127.0.0.1:80", 0}};
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());

  in = Input();
  in.prefix = "/tmp/x y";
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
  in = Input();
  in.members_file = "/tmp/a\").evil(\"";
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
  in = Input();
  in.routes_file = "/tmp/a\").evil(\"";
  EXPECT_TRUE(RenderNginxConfig(Templates(), in).status().IsInvalidArgument());
}

TEST(NginxRender, MemberChecks) {
  EXPECT_TRUE(CheckMember({"127.0.0.1:8080", 1}, false).ok());
  EXPECT_TRUE(CheckMember({"[::1]:8080", 5}, false).ok());
  EXPECT_FALSE(CheckMember({"localhost:8080", 1}, false).ok());
  EXPECT_TRUE(CheckMember({"localhost:8080", 1}, true).ok());
  EXPECT_FALSE(CheckMember({"127.0.0.1", 1}, true).ok());
  EXPECT_FALSE(CheckMember({"127.0.0.1:0", 1}, true).ok());
  EXPECT_FALSE(CheckMember({"127.0.0.1:99999", 1}, true).ok());
  EXPECT_FALSE(CheckMember({"::1:80", 1}, true).ok());
  EXPECT_FALSE(CheckMember({"a b:80", 1}, true).ok());
  EXPECT_FALSE(CheckMember({"127.0.0.1:80", 1001}, true).ok());
}

TEST(NginxRender, RenderingIsDeterministic) {
  NginxRenderInput a = Input(NginxSettings::Upstreams::kReload);
  a.endpoints = {Endpoint("web", 80), Endpoint("api", 80, "/api/"), Endpoint("x", 81)};
  a.members["web"] = {{"127.0.0.1:1", 1}, {"127.0.0.1:2", 2}};
  NginxRenderInput b = a;
  std::reverse(b.endpoints.begin(), b.endpoints.end());
  std::reverse(b.members["web"].begin(), b.members["web"].end());
  EXPECT_EQ(Render(a), Render(a));
  EXPECT_EQ(Render(a), Render(b));
}

}  // namespace
}  // namespace reactor
