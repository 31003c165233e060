// agent.conf's etcd and backup keys ([agent] etcd_*, backup_*).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/common/agent_config.h"
#include "agent/store/store_options.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

TEST(AgentConfigStore, DefaultsAreOffWithSpecRotation) {
  auto c = ParseAgentConfig("agent.conf", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->etcd_ca_file, "");
  EXPECT_EQ(c->etcd_user, "");
  EXPECT_EQ(c->backup_dir, "");
  EXPECT_EQ(c->backup_hours_to_keep, 24);
  EXPECT_EQ(c->backup_days_to_keep, 14);
  EXPECT_EQ(c->backup_weeks_to_keep, 4);
  EXPECT_EQ(c->backup_months_to_keep, 3);
}

TEST(AgentConfigStore, ParsesEveryKeyAndRoundTrips) {
  auto c = ParseAgentConfig("agent.conf", R"([agent]
state = etcd://127.0.0.1:2379,127.0.0.1:2380
etcd_ca_file = /etc/reactor/etcd-ca.pem
etcd_cert_file = /etc/reactor/etcd.pem
etcd_key_file = /etc/reactor/etcd-key.pem
etcd_user = reactor
etcd_password_file = /etc/reactor/etcd-password
backup_dir = /var/backups/reactor
backup_hours_to_keep = 6
backup_days_to_keep = 0
backup_weeks_to_keep = 8
backup_months_to_keep = 12
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->etcd_key_file, "/etc/reactor/etcd-key.pem");
  EXPECT_EQ(c->backup_days_to_keep, 0);
  StoreOptions o = StoreOptionsFor(*c);
  EXPECT_EQ(o.etcd_ca_file, "/etc/reactor/etcd-ca.pem");
  EXPECT_EQ(o.etcd_cert_file, "/etc/reactor/etcd.pem");
  EXPECT_EQ(o.etcd_user, "reactor");
  EXPECT_EQ(o.etcd_password_file, "/etc/reactor/etcd-password");
  auto again = ParseAgentConfig("again", SerializeAgentConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->backup_months_to_keep, 12);
  EXPECT_EQ(again->etcd_password_file, "/etc/reactor/etcd-password");
}

TEST(AgentConfigStore, BadValuesNameFileLineSectionAndKey) {
  struct Case {
    const char* key;
    const char* value;
  } cases[] = {
      {"etcd_ca_file", "ca.pem"},
      {"etcd_cert_file", "/etc/../x"},
      {"etcd_key_file", "/etc/$key"},
      {"etcd_password_file", "password"},
      {"etcd_user", "a b"},
      {"etcd_user", "x;rm"},
      {"backup_dir", "backups"},
      {"backup_hours_to_keep", "-1"},
      {"backup_days_to_keep", "many"},
      {"backup_weeks_to_keep", "100000"},
      {"backup_months_to_keep", "1.5"},
  };
  for (const Case& c : cases) {
    const std::string text = std::string("[agent]\n") + c.key + " = " + c.value + "\n";
    auto r = ParseAgentConfig("/etc/reactor/agent.conf", text);
    ASSERT_FALSE(r.ok()) << c.key << " = " << c.value;
    EXPECT_THAT(r.status().message(), HasSubstr(std::string("/etc/reactor/agent.conf: line 2: [agent] ") + c.key))
        << r.status().message();
  }
}

TEST(AgentConfigStore, EtcdTlsFilesGoTogether) {
  auto r = ParseAgentConfig("agent.conf", "[agent]\netcd_ca_file = /ca.pem\netcd_cert_file = /c.pem\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("[agent] etcd_key_file"));
  EXPECT_THAT(r.status().message(), HasSubstr("all three, or none"));
  auto ok = ParseAgentConfig("agent.conf",
                             "[agent]\netcd_ca_file = /ca.pem\netcd_cert_file = /c.pem\netcd_key_file = /k.pem\n");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(AgentConfigStore, EtcdUserNeedsAPasswordFile) {
  auto r = ParseAgentConfig("agent.conf", "[agent]\netcd_user = reactor\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("[agent] etcd_password_file"));
  auto r2 = ParseAgentConfig("agent.conf", "[agent]\netcd_password_file = /p\n");
  ASSERT_FALSE(r2.ok());
  EXPECT_THAT(r2.status().message(), HasSubstr("[agent] etcd_user"));
}

TEST(AgentConfigStore, EtcdCompactionIsFiveMinutesByDefaultAndCanBeTurnedOff) {
  auto c = ParseAgentConfig("agent.conf", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->etcd_compaction, Duration(300000));
  EXPECT_EQ(StoreOptionsFor(*c).etcd_compaction, Duration(300000));
  auto hour = ParseAgentConfig("agent.conf", "[agent]\netcd_compaction = 1h\n");
  ASSERT_TRUE(hour.ok()) << hour.status().ToString();
  EXPECT_EQ(StoreOptionsFor(*hour).etcd_compaction, Duration(3600000));
  for (const char* off : {"0", "off"}) {
    auto o = ParseAgentConfig("agent.conf", std::string("[agent]\netcd_compaction = ") + off + "\n");
    ASSERT_TRUE(o.ok()) << off << ": " << o.status().ToString();
    EXPECT_EQ(o->etcd_compaction, Duration(0));
  }
  auto tiny = ParseAgentConfig("agent.conf", "[agent]\netcd_compaction = 100ms\n");
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(tiny.status().message(), HasSubstr("etcd_compaction"));
  EXPECT_THAT(tiny.status().message(), HasSubstr("0/off"));
  EXPECT_FALSE(ParseAgentConfig("agent.conf", "[agent]\netcd_compaction = soon\n").ok());
}

}  // namespace
}  // namespace reactor
