// The metrics API routes on a real httplib server on loopback (port chosen by
// the kernel), with the collector on a fake log and a fake clock.
#include "agent/metrics/metrics_routes.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/store/sqlite_store.h"
#include "fake_clock.h"
#include "fake_log_file_system.h"

namespace reactor {
namespace {

using nlohmann::json;

const std::string kLog = "/log/access.log";

class MetricsRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(":memory:", clock_);
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    registry_ = std::make_unique<EndpointRegistry>(*store_, nullptr);
    auto put = registry_->Put("web",
                              "[endpoint]\nurl = http://127.0.0.1:18081/\ncloud = static\n"
                              "static_instances = 10.0.0.1:80, 10.0.0.2:80\n[scaling]\nwindow = 5s\n",
                              "api");
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    auto* fs = new FakeLogFileSystem();
    fs_ = fs;
    fs->Create(kLog);
    collector_ = std::make_unique<MetricsCollector>(kLog, clock_, std::unique_ptr<FileSystem>(fs));
    collector_->Poll();
    custom_ = std::make_unique<CustomMetrics>(*store_, clock_);
    routes_ = std::make_unique<MetricsRoutes>(*collector_, *custom_, *registry_, *store_, [](const std::string&) {
      return std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80"};
    });
    BeforeRegister();
    routes_->Register(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  virtual void BeforeRegister() {}
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::pair<int, json> Get(const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get(path);
    if (!r) return {0, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  std::pair<int, json> Post(const std::string& path, const std::string& body) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Post(path, body, "application/json");
    if (!r) return {0, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<EndpointRegistry> registry_;
  FakeLogFileSystem* fs_ = nullptr;
  std::unique_ptr<MetricsCollector> collector_;
  std::unique_ptr<CustomMetrics> custom_;
  std::unique_ptr<MetricsRoutes> routes_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(MetricsRoutesTest, GetReturnsAveragesCustomMetricsAndBackends) {
  clock_.Advance(Duration(10000));
  const int64_t now_s = clock_.WallMillis() / 1000;
  for (int i = 0; i < 20; ++i) {
    fs_->Append(kLog, std::to_string(now_s - 1) + ".500|reactor_web|200|100|0.010|10.0.0.1:80|200|0.010\n");
  }
  fs_->Append(kLog, "garbage\n");
  collector_->Poll();
  ASSERT_TRUE(custom_->Push("web", "queue_depth", 42).ok());

  auto [status, j] = Get("/v1/endpoints/web/metrics");
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["endpoint"], "web");
  EXPECT_EQ(j["window_s"], 5.0);
  EXPECT_EQ(j["instances"], 2);
  EXPECT_DOUBLE_EQ(j["metrics"]["rate"].get<double>(), 20.0 / 5 / 2);
  EXPECT_DOUBLE_EQ(j["metrics"]["response"].get<double>(), 0.010);
  EXPECT_EQ(j["metrics"]["queue_depth"], 42.0);
  EXPECT_TRUE(j["metrics"].contains("response.p95"));
  EXPECT_EQ(j["unparsed"], 1);
  EXPECT_EQ(j["log"], "");
  EXPECT_FALSE(j.contains("backends"));

  auto [status2, k] = Get("/v1/endpoints/web/metrics?instances=1");
  ASSERT_EQ(status2, 200);
  EXPECT_EQ(k["backends"]["10.0.0.1:80"]["hits"], 20);
  EXPECT_EQ(k["backends"]["10.0.0.2:80"]["hits"], 0);
  EXPECT_EQ(k["backends"]["10.0.0.2:80"]["in_service"], true);
}

// With the cluster's traffic, GET shows what every host's nginx saw: here
// this host's 20 requests and another host's 30.
class MetricsRoutesClusterTest : public MetricsRoutesTest {
 protected:
  void BeforeRegister() override {
    cluster_ = std::make_unique<ClusterTraffic>(*store_, clock_);
    routes_->UseClusterTraffic(cluster_.get());
  }
  std::unique_ptr<ClusterTraffic> cluster_;
};

TEST_F(MetricsRoutesClusterTest, GetSumsEveryHostsTraffic) {
  const LeaseId lease = store_->GrantLease(Duration(60000)).value();
  auto* other_fs = new FakeLogFileSystem();
  other_fs->Create(kLog);
  MetricsCollector other(kLog, clock_, std::unique_ptr<FileSystem>(other_fs));
  other.Poll();
  TrafficPublisher::Options o;
  o.lease = [lease] { return lease; };
  o.manager = "here";
  TrafficPublisher here(o, *collector_, *store_);
  o.manager = "there";
  TrafficPublisher there(o, other, *store_);

  clock_.Advance(Duration(10000));
  const int64_t now_s = clock_.WallMillis() / 1000;
  for (int i = 0; i < 20; ++i) {
    fs_->Append(kLog, std::to_string(now_s - 1) + ".500|reactor_web|200|100|0.010|10.0.0.1:80|200|0.010\n");
  }
  for (int i = 0; i < 30; ++i) {
    other_fs->Append(kLog, std::to_string(now_s - 1) + ".500|reactor_web|200|100|0.010|10.0.0.2:80|200|0.010\n");
  }
  fs_->Append(kLog, "garbage\n");
  collector_->Poll();
  other.Poll();
  ASSERT_TRUE(here.Publish({}, {}).ok());
  ASSERT_TRUE(there.Publish({}, {}).ok());

  auto [status, j] = Get("/v1/endpoints/web/metrics?instances=1");
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_DOUBLE_EQ(j["total_rate"].get<double>(), 50.0 / 5);
  EXPECT_DOUBLE_EQ(j["metrics"]["rate"].get<double>(), 50.0 / 5 / 2);
  EXPECT_EQ(j["backends"]["10.0.0.1:80"]["hits"], 20);
  EXPECT_EQ(j["backends"]["10.0.0.2:80"]["hits"], 30);
  EXPECT_EQ(j["unparsed"], 1);  // this host's log
}

TEST_F(MetricsRoutesTest, UnknownEndpointIs404) {
  EXPECT_EQ(Get("/v1/endpoints/nope/metrics").first, 404);
  EXPECT_EQ(Post("/v1/endpoints/nope/metrics", R"({"metrics":{"a":1}})").first, 404);
}

TEST_F(MetricsRoutesTest, PostStoresCustomMetricsWithTheirTtl) {
  auto [status, j] = Post("/v1/endpoints/web/metrics", R"({"metrics":{"queue_depth":7,"lag":"800ms"},"ttl":"30s"})");
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["ttl_s"], 30.0);
  EXPECT_EQ(custom_->Current("web"), (std::map<std::string, double>{{"lag", 0.8}, {"queue_depth", 7}}));
  clock_.Advance(Duration(30000));
  EXPECT_TRUE(custom_->Current("web").empty());
}

TEST_F(MetricsRoutesTest, PostRejectsBadInputAndStoresNothing) {
  for (const char* body : {
           "not json",
           R"({"metrics":{}})",
           R"({"metrics":[1]})",
           R"({"metrics":{"good":1,"rate":5}})",
           R"({"metrics":{"good":1,"bad name":5}})",
           R"({"metrics":{"good":1,"neg":-1}})",
           R"({"metrics":{"good":1,"str":"abc"}})",
           R"({"metrics":{"good":1},"ttl":"2h"})",
           R"({"metrics":{"good":1},"ttl":"soon"})",
           R"({"metrics":{"good":1},"ttl":0})",
       }) {
    auto [status, j] = Post("/v1/endpoints/web/metrics", body);
    EXPECT_EQ(status, 400) << body;
    EXPECT_TRUE(j.is_object() && j.contains("error")) << body;
  }
  EXPECT_TRUE(custom_->Current("web").empty());
}

}  // namespace
}  // namespace reactor
