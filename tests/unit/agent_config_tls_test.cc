// [agent] tls_cert_file, tls_key_file and insecure_listen: which listen
// addresses agent.conf accepts without TLS, and how the keys go together.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/common/agent_config.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const Result<AgentConfig>& r) { return r.ok() ? "<ok>" : r.status().message(); }

AgentConfig::Listen ListenOf(const std::string& value) {
  auto r = ParseAgentConfig("agent.conf", "[agent]\ninsecure_listen = true\nlisten = " + value + "\n");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->listen : AgentConfig::Listen{};
}

TEST(AgentConfigTls, DefaultsArePlainHttpOnLoopback) {
  auto r = ParseAgentConfig("agent.conf", "");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tls_cert_file, "");
  EXPECT_EQ(r->tls_key_file, "");
  EXPECT_FALSE(r->insecure_listen);
  EXPECT_TRUE(r->listen.IsLoopback());
}

TEST(AgentConfigTls, LoopbackIsUnixSocketsAnd127Slash8AndIpv6One) {
  for (const char* v : {"127.0.0.1:7070", "127.1.2.3:7070", "127.255.255.254:1", "[::1]:7070",
                        "[::ffff:127.0.0.1]:7070", "localhost:7070", "LocalHost:7070", "unix:/run/reactor.sock"}) {
    EXPECT_TRUE(ListenOf(v).IsLoopback()) << v;
  }
  for (const char* v :
       {"0.0.0.0:7070", "[::]:7070", "198.18.0.1:7070", "128.0.0.1:7070", "126.255.255.255:7070", "[::2]:7070",
        "[::ffff:198.18.0.1]:7070", "[fe80::1]:7070", "agent1.example:7070", "localhost.example:7070"}) {
    EXPECT_FALSE(ListenOf(v).IsLoopback()) << v;
  }
}

TEST(AgentConfigTls, RefusesANonLoopbackListenWithoutTlsNamingTheKeyAndLine) {
  for (const char* v : {"0.0.0.0:7070", "[::]:7070", "198.18.0.1:7070", "agent1.example:7070"}) {
    auto r = ParseAgentConfig("/etc/reactor/agent.conf", std::string("[agent]\nname = a\nlisten = ") + v + "\n");
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_THAT(ErrorOf(r), HasSubstr(std::string("/etc/reactor/agent.conf: line 3: [agent] listen: ") + v +
                                      " is not a loopback address"));
    EXPECT_THAT(ErrorOf(r), HasSubstr("tls_cert_file and tls_key_file"));
    EXPECT_THAT(ErrorOf(r), HasSubstr("insecure_listen = true"));
  }
}

TEST(AgentConfigTls, InsecureListenAllowsPlainHttpBeyondLoopback) {
  auto r = ParseAgentConfig("agent.conf", "[agent]\nlisten = 0.0.0.0:7070\ninsecure_listen = true\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->insecure_listen);
  EXPECT_EQ(r->listen.ToString(), "0.0.0.0:7070");
  EXPECT_EQ(ErrorOf(ParseAgentConfig("a.conf", "[agent]\ninsecure_listen = yes\n")),
            "a.conf: line 2: [agent] insecure_listen: 'yes' is not true or false");
  // false is the same as not set.
  EXPECT_THAT(ErrorOf(ParseAgentConfig("a.conf", "[agent]\nlisten = 0.0.0.0:7070\ninsecure_listen = false\n")),
              HasSubstr("a.conf: line 2: [agent] listen: 0.0.0.0:7070 is not a loopback address"));
}

TEST(AgentConfigTls, TlsFilesAllowAnyListenAddress) {
  auto r = ParseAgentConfig("agent.conf",
                            "[agent]\nlisten = 0.0.0.0:7443\ntls_cert_file = /etc/reactor/api.crt\n"
                            "tls_key_file = /etc/reactor/api.key\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tls_cert_file, "/etc/reactor/api.crt");
  EXPECT_EQ(r->tls_key_file, "/etc/reactor/api.key");
  EXPECT_FALSE(r->insecure_listen);
  // And loopback over TLS too.
  EXPECT_TRUE(ParseAgentConfig("agent.conf", "[agent]\ntls_cert_file = /a.crt\ntls_key_file = /a.key\n").ok());
}

TEST(AgentConfigTls, CertAndKeyAreSetTogether) {
  EXPECT_EQ(ErrorOf(ParseAgentConfig("a.conf", "[agent]\ntls_cert_file = /etc/reactor/api.crt\n")),
            "a.conf: [agent] tls_key_file: tls_cert_file and tls_key_file are set together (both, or neither)");
  EXPECT_EQ(ErrorOf(ParseAgentConfig("a.conf", "[agent]\ntls_key_file = /etc/reactor/api.key\n")),
            "a.conf: [agent] tls_cert_file: tls_cert_file and tls_key_file are set together (both, or neither)");
  // Half a TLS setup does not open a non-loopback listen either: the pair is
  // the one error reported.
  EXPECT_EQ(ErrorOf(ParseAgentConfig("a.conf", "[agent]\nlisten = 0.0.0.0:1\ntls_key_file = /k\n")),
            "a.conf: [agent] tls_cert_file: tls_cert_file and tls_key_file are set together (both, or neither)");
}

TEST(AgentConfigTls, TlsFilesMustBeAbsolutePaths) {
  EXPECT_THAT(ErrorOf(ParseAgentConfig("a.conf", "[agent]\ntls_cert_file = api.crt\ntls_key_file = /k\n")),
              HasSubstr("a.conf: line 2: [agent] tls_cert_file: "));
  EXPECT_THAT(ErrorOf(ParseAgentConfig("a.conf", "[agent]\ntls_cert_file = /c\ntls_key_file = ../api.key\n")),
              HasSubstr("a.conf: line 3: [agent] tls_key_file: "));
}

TEST(AgentConfigTls, TlsOnAUnixSocketIsRefused) {
  EXPECT_EQ(ErrorOf(ParseAgentConfig("a.conf",
                                     "[agent]\nlisten = unix:/run/r.sock\ntls_cert_file = /c\ntls_key_file = /k\n")),
            "a.conf: line 3: [agent] tls_cert_file: TLS is for a host:port listen address; listen = "
            "unix:/run/r.sock is a unix socket, which its file mode (0600) already guards");
}

TEST(AgentConfigTls, NewKeysRoundTripThroughSerialize) {
  auto r = ParseAgentConfig("agent.conf",
                            "[agent]\nlisten = [::]:7443\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\n"
                            "insecure_listen = true\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::string text = SerializeAgentConfig(*r);
  EXPECT_THAT(text, HasSubstr("tls_cert_file = /c.pem\n"));
  EXPECT_THAT(text, HasSubstr("tls_key_file = /k.pem\n"));
  EXPECT_THAT(text, HasSubstr("insecure_listen = true\n"));
  auto again = ParseAgentConfig("x", text);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(SerializeAgentConfig(*again), text);
}

}  // namespace
}  // namespace reactor
