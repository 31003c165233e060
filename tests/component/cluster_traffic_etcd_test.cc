// Traffic counters on a real etcd: two hosts publish 200 endpoints each
// under their own leases (etcd enforces its 128-operation limit on every
// transaction), one reader sums them, and a host's records go with its lease.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "agent/metrics/cluster_traffic.h"
#include "agent/store/keys.h"
#include "etcd_fixture.h"
#include "fake_clock.h"
#include "fake_log_file_system.h"

namespace reactor {
namespace {

const std::string kLog = "/var/log/nginx/access.log";

std::string Line(const Clock& clock, int64_t ago_ms, const std::string& endpoint, const std::string& addr,
                 const char* time) {
  char msec[32];
  const int64_t ms = clock.WallMillis() - ago_ms;
  std::snprintf(msec, sizeof msec, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
  return std::string(msec) + "|reactor_" + endpoint + "|200|1000|0.010|" + addr + "|200|" + time + "\n";
}

TcpSocket Established(const std::string& ip, int port) {
  TcpSocket s;
  s.local_ip = "127.0.0.1";
  s.local_port = 40000;
  s.remote_ip = ip;
  s.remote_port = port;
  s.state = kTcpEstablished;
  return s;
}

struct Host {
  Host(const std::string& name, Clock& clock, Store& store, LeaseId l) : lease(l) {
    fs = new FakeLogFileSystem();
    fs->Create(kLog);
    collector = std::make_unique<MetricsCollector>(kLog, clock, std::unique_ptr<FileSystem>(fs));
    collector->Poll();
    TrafficPublisher::Options o;
    o.manager = name;
    o.lease = [this] { return lease; };
    publisher = std::make_unique<TrafficPublisher>(o, *collector, store);
  }
  FakeLogFileSystem* fs;  // owned by collector
  std::unique_ptr<MetricsCollector> collector;
  LeaseId lease;
  std::unique_ptr<TrafficPublisher> publisher;
};

TEST(ClusterTrafficEtcd, TwoHostsPublishUnderTheirLeasesAndOneReaderSumsThem) {
  EtcdCluster cluster;
  ASSERT_EQ(cluster.Start(1), "");
  auto opened = OpenStore(cluster.Url(), SystemClock::Get());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> etcd = std::move(opened).value();

  FakeClock clock;  // the hosts' and the reader's time; etcd keeps its own for leases
  auto lease_a = etcd->GrantLease(Duration(30000));
  auto lease_b = etcd->GrantLease(Duration(30000));
  ASSERT_TRUE(lease_a.ok() && lease_b.ok());
  Host a("a", clock, *etcd, *lease_a);
  Host b("b", clock, *etcd, *lease_b);

  clock.Advance(Duration(5000));  // a whole second
  const int kEndpoints = 200;     // two transactions per host: 128 + 72
  for (int e = 0; e < kEndpoints; ++e) {
    const std::string ep = "ep" + std::to_string(e);
    for (int i = 0; i < 10; ++i) a.fs->Append(kLog, Line(clock, 50 + 400 * i, ep, "127.0.0.2:80", "0.010"));
    for (int i = 0; i < 5; ++i) b.fs->Append(kLog, Line(clock, 50 + 800 * i, ep, "127.0.0.3:80", "0.030"));
  }
  a.collector->Poll();
  b.collector->Poll();
  const std::map<std::string, std::vector<std::string>> members = {{"ep7", {"127.0.0.2:80", "127.0.0.3:80"}}};
  Status st = a.publisher->Publish(members, {Established("127.0.0.2", 80)});
  ASSERT_TRUE(st.ok()) << st.ToString();
  st = b.publisher->Publish(members, {Established("127.0.0.3", 80), Established("127.0.0.3", 80)});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(a.publisher->stats().transactions, 2u);
  EXPECT_EQ(b.publisher->stats().writes, static_cast<uint64_t>(kEndpoints));

  auto records = etcd->GetPrefix(kKeyRoot + "counters/");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 2u * kEndpoints);
  for (const auto& kv : *records) {
    EXPECT_EQ(kv.lease, kv.key.substr(kv.key.size() - 2) == "/a" ? *lease_a : *lease_b) << kv.key;
  }

  ClusterTraffic reader(*etcd, clock);
  const std::vector<std::string> in_service = {"127.0.0.2:80", "127.0.0.3:80"};
  for (const char* ep : {"ep0", "ep7", "ep199"}) {
    auto m = reader.Metrics(ep, Duration(5000), in_service);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_DOUBLE_EQ(m->total_rate, 15.0 / 5) << ep;  // both hosts' requests over the 5 s window
    EXPECT_DOUBLE_EQ(m->averages["rate"], 1.5) << ep;
    EXPECT_DOUBLE_EQ(m->averages["response"], (10 * 0.010 + 5 * 0.030) / 15) << ep;
    EXPECT_EQ(m->backends["127.0.0.2:80"].hits, 10u) << ep;
    EXPECT_EQ(m->backends["127.0.0.3:80"].hits, 5u) << ep;
  }
  auto m = reader.Metrics("ep7", Duration(5000), in_service);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->averages["active"], 1.5);  // 1 from a, 2 from b

  // b's lease ends (its host is gone): its records go with it.
  ASSERT_TRUE(etcd->RevokeLease(*lease_b).ok());
  clock.Advance(Duration(500));
  m = reader.Metrics("ep7", Duration(5000), in_service);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->averages["active"], 0.5);
  records = etcd->GetPrefix(kKeyRoot + "counters/");
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), static_cast<size_t>(kEndpoints));
}

}  // namespace
}  // namespace reactor
