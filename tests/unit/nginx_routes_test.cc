#include "agent/nginx/nginx_routes.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

EndpointConfig Endpoint(const std::string& name, int port, const std::string& path = "/") {
  EndpointConfig e;
  e.name = name;
  e.url.port = port;
  e.url.path = path;
  return e;
}

std::vector<std::string> Names(const std::vector<EndpointConfig>& eps) {
  std::vector<std::string> out;
  for (const EndpointConfig& e : eps) out.push_back(e.name);
  return out;
}

TEST(NginxRoutes, ListenKeysNameTheServer) {
  EndpointUrl u;
  u.port = 8080;
  EXPECT_EQ(NginxListen(u), "8080");
  u.host = "127.0.0.1";
  EXPECT_EQ(NginxListen(u), "127.0.0.1:8080");
  u.host = "::1";
  EXPECT_EQ(NginxListen(u), "[::1]:8080");
  u.host = "[::1]";
  EXPECT_EQ(NginxListen(u), "[::1]:8080");
}

TEST(NginxRoutes, TablesGroupEndpointsByServerSortedByPath) {
  EndpointConfig api = Endpoint("api", 8080, "/api/");
  api.lb.balance = Balance::kLeastConn;
  api.lb.keepalive = 8;
  EndpointConfig web = Endpoint("web", 8080, "/");
  web.lb.redirect = "http://example.com/sorry";
  RouteTables t = BuildRouteTables({web, api, Endpoint("other", 9090)});
  ASSERT_EQ(t.size(), 2u);
  ASSERT_EQ(t["8080"].size(), 2u);
  EXPECT_EQ(t["8080"][0].endpoint, "web");
  // Process endpoints that may scale hold requests (30 s, 1,000 by default).
  EXPECT_EQ(EncodeRouteTable("8080", t["8080"]),
            "8080\nweb / round_robin 0 http://example.com/sorry 30000 1000\napi /api/ least_conn 8 - 30000 1000\n");
  EXPECT_EQ(EncodeRoutesFile(t),
            "server 8080\nweb / round_robin 0 http://example.com/sorry 30000 1000\n"
            "api /api/ least_conn 8 - 30000 1000\n"
            "server 9090\nother / round_robin 0 - 30000 1000\n");
}

TEST(NginxRoutes, ServerKeyChangesWithPortAndCertificateOnly) {
  EndpointConfig a = Endpoint("a", 8080, "/a/");
  EndpointConfig b = Endpoint("b", 8080, "/b/");
  b.lb.balance = Balance::kIpHash;
  EXPECT_EQ(ServerKey(a), ServerKey(b));
  b.lb.ssl_certificate = "/c.crt";
  b.lb.ssl_key = "/c.key";
  EXPECT_NE(ServerKey(a), ServerKey(b));
  EXPECT_NE(ServerKey(a), ServerKey(Endpoint("a", 8081, "/a/")));
}

TEST(NginxRoutes, InvalidEndpointIsHeldBackAndTheRestAdmitted) {
  EndpointConfig bad = Endpoint("bad", 80, "/a; } server {");
  Admission a = AdmitEndpoints({Endpoint("web", 80), bad, Endpoint("api", 80, "/api/")}, {}, {});
  EXPECT_EQ(Names(a.admitted), (std::vector<std::string>{"api", "web"}));
  ASSERT_EQ(a.held_back.count("bad"), 1u);
  EXPECT_NE(a.held_back["bad"].find("url path"), std::string::npos) << a.held_back["bad"];
}

TEST(NginxRoutes, NewcomerOnAServedPathIsHeldBackNotTheServingOne) {
  std::map<std::string, EndpointConfig> current = {{"zed", Endpoint("zed", 80, "/x/")}};
  Admission a = AdmitEndpoints({Endpoint("abc", 80, "/x/"), Endpoint("zed", 80, "/x/")}, current, {});
  EXPECT_EQ(Names(a.admitted), (std::vector<std::string>{"zed"}));
  ASSERT_EQ(a.held_back.count("abc"), 1u);
  EXPECT_NE(a.held_back["abc"].find("zed already serves 80/x/"), std::string::npos) << a.held_back["abc"];
}

TEST(NginxRoutes, TlsDisagreementOnASharedPortHoldsBackTheLaterEndpoint) {
  EndpointConfig a = Endpoint("a", 8443);
  a.lb.ssl_certificate = "/c.crt";
  a.lb.ssl_key = "/c.key";
  Admission adm = AdmitEndpoints({a, Endpoint("b", 8443, "/b/")}, {}, {});
  EXPECT_EQ(Names(adm.admitted), (std::vector<std::string>{"a"}));
  EXPECT_EQ(adm.held_back.count("b"), 1u);
}

TEST(NginxRoutes, RefusedConfigIsHeldBackAndThePreviousOneKeepsServing) {
  EndpointConfig before = Endpoint("web", 80);
  EndpointConfig after = Endpoint("web", 81);
  std::map<std::string, RefusedEndpoint> refused = {{"web", {after, "nginx -t: bind() failed"}}};
  Admission a = AdmitEndpoints({after}, {{"web", before}}, refused);
  ASSERT_EQ(a.admitted.size(), 1u);
  EXPECT_EQ(a.admitted[0].url.port, 80);
  EXPECT_NE(a.held_back["web"].find("previous configuration keeps serving"), std::string::npos);
  // Another change is a new configuration: tried again.
  EndpointConfig again = Endpoint("web", 82);
  a = AdmitEndpoints({again}, {{"web", before}}, refused);
  ASSERT_EQ(a.admitted.size(), 1u);
  EXPECT_EQ(a.admitted[0].url.port, 82);
  EXPECT_TRUE(a.held_back.empty());
}

TEST(NginxRoutes, SecondEndpointOfTheSameNameIsHeldBack) {
  Admission a = AdmitEndpoints({Endpoint("web", 80), Endpoint("web", 81)}, {}, {});
  EXPECT_EQ(a.admitted.size(), 1u);
  EXPECT_EQ(a.held_back.count("web"), 1u);
}

}  // namespace
}  // namespace reactor
