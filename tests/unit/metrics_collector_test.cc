#include "agent/metrics/metrics_collector.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>

#include "fake_clock.h"
#include "fake_log_file_system.h"

namespace reactor {
namespace {

const std::string kLog = "/var/log/reactor/access.log";

class MetricsCollectorTest : public ::testing::Test {
 protected:
  MetricsCollectorTest() {
    fs_ = new FakeLogFileSystem();
    fs_->Create(kLog);
    collector_ = std::make_unique<MetricsCollector>(kLog, clock_, std::unique_ptr<FileSystem>(fs_));
    collector_->Poll();  // the agent starts: begins at the end of the log
  }

  // A line nginx logged `ago` before the clock's now.
  void Log(Duration ago, const std::string& endpoint, const std::string& addrs, int status, uint64_t bytes,
           const std::string& upstream_status, const std::string& times) {
    char msec[32];
    int64_t ms = clock_.WallMillis() - ago.count();
    std::snprintf(msec, sizeof msec, "%lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    fs_->Append(kLog, std::string(msec) + "|reactor_" + endpoint + "|" + std::to_string(status) + "|" +
                          std::to_string(bytes) + "|0.010|" + addrs + "|" + upstream_status + "|" + times + "\n");
  }
  void Ok(Duration ago, const std::string& addr = "10.0.0.1:80", double rt = 0.010) {
    char t[32];
    std::snprintf(t, sizeof t, "%.3f", rt);
    Log(ago, "web", addr, 200, 1000, "200", t);
  }
  EndpointMetrics Get(const std::vector<std::string>& in_service, Duration window = Duration(5000),
                      const std::vector<TcpSocket>& tcp = {}) {
    return collector_->Metrics("web", window, in_service, &tcp);
  }

  FakeClock clock_;
  FakeLogFileSystem* fs_;  // owned by collector_
  std::unique_ptr<MetricsCollector> collector_;
};

TEST_F(MetricsCollectorTest, RateIsRequestsOverTheWindowPerInstance) {
  clock_.Advance(Duration(10000));  // now = a whole second
  // 10 requests/s spread evenly over the last 10 s.
  for (int i = 0; i < 100; ++i) Ok(Duration(50 + 100 * i));
  collector_->Poll();
  EndpointMetrics m = Get({"10.0.0.1:80", "10.0.0.2:80"});
  EXPECT_DOUBLE_EQ(m.total_rate, 10.0);
  EXPECT_DOUBLE_EQ(m.averages["rate"], 5.0);      // ÷ 2 instances in service
  EXPECT_DOUBLE_EQ(m.averages["bytes"], 5000.0);  // 1000 bytes each
  EXPECT_DOUBLE_EQ(m.averages["errors"], 0.0);
  EXPECT_DOUBLE_EQ(m.averages["response"], 0.010);
  EXPECT_EQ(m.instances, 2);
  EXPECT_DOUBLE_EQ(m.window_s, 5.0);
  ASSERT_EQ(m.backends.count("10.0.0.1:80"), 1u);
  EXPECT_EQ(m.backends["10.0.0.1:80"].hits, 50u);
  EXPECT_DOUBLE_EQ(m.backends["10.0.0.1:80"].rate, 10.0);
  EXPECT_TRUE(m.backends["10.0.0.2:80"].in_service);
  EXPECT_EQ(m.backends["10.0.0.2:80"].hits, 0u);
}

TEST_F(MetricsCollectorTest, WindowSpansWholeSecondsUpToNow) {
  clock_.Advance(Duration(10700));  // 0.7 s into the current second
  for (int i = 0; i < 100; ++i) Ok(Duration(50 + 100 * i));
  collector_->Poll();
  // Seconds ⌊now⌋−4 … now: 4.7 s holding 47 requests.
  EXPECT_NEAR(Get({"a"}).averages["rate"], 10.0, 1e-9);
  clock_.Advance(Duration(400));  // 0.1 s into the next second: one more second back
  EXPECT_NEAR(Get({"a"}).averages["rate"], 47.0 / 5.1, 1e-9);
}

TEST_F(MetricsCollectorTest, ALoadStepShowsAtOnce) {
  clock_.Advance(Duration(20000));
  for (int i = 0; i < 10; ++i) Ok(Duration(100 * i));  // 10 requests in the last second
  collector_->Poll();
  EXPECT_NEAR(Get({"a"}).averages["rate"], 10.0 / 5.0, 1e-9);
}

TEST_F(MetricsCollectorTest, OldBucketsExpire) {
  clock_.Advance(Duration(10000));
  for (int i = 0; i < 20; ++i) Ok(Duration(50 * i));
  collector_->Poll();
  EXPECT_GT(Get({"a"}).averages["rate"], 0);
  clock_.Advance(Duration(6000));
  collector_->Poll();
  EXPECT_EQ(Get({"a"}).averages["rate"], 0);
  EXPECT_TRUE(Get({"a"}).backends.count("10.0.0.1:80") == 0);
}

TEST_F(MetricsCollectorTest, LinesOlderThanTheRetentionAreDropped) {
  clock_.Advance(Duration(100000));
  Ok(Duration(60000));  // a minute ago: older than the 10 s kept by default
  collector_->Poll();
  EXPECT_EQ(Get({"a"}, Duration(60000)).total_rate, 0);
}

TEST_F(MetricsCollectorTest, AskingForALongerWindowKeepsMoreBuckets) {
  clock_.Advance(Duration(1000));
  Get({"a"}, Duration(60000));  // retention grows to 62 s
  clock_.Advance(Duration(60000));
  for (int i = 0; i < 60; ++i) Ok(Duration(500 + 1000 * i));  // 1/s over the last minute
  collector_->Poll();
  EXPECT_NEAR(Get({"a"}, Duration(60000)).total_rate, 1.0, 0.02);
}

TEST_F(MetricsCollectorTest, WindowStartsNoEarlierThanTheAgent) {
  // 2 s after start, a 5 s window covers only the 2 s that were watched.
  clock_.Advance(Duration(2000));
  for (int i = 0; i < 20; ++i) Ok(Duration(50 + 100 * i));
  collector_->Poll();
  EXPECT_NEAR(Get({"a"}).total_rate, 10.0, 1e-9);
}

TEST_F(MetricsCollectorTest, LateLinesLandInTheSecondTheyHappened) {
  clock_.Advance(Duration(20000));
  Ok(Duration(30000));  // older than the window and the retention
  Ok(Duration(8000));   // outside a 5 s window, inside the retention
  Ok(Duration(3000));
  Ok(Duration(-5000));  // from the future: counts now
  collector_->Poll();
  EXPECT_EQ(Get({"a"}).backends["10.0.0.1:80"].hits, 2u);
  EXPECT_EQ(Get({"a"}, Duration(10000)).backends["10.0.0.1:80"].hits, 3u);
}

TEST_F(MetricsCollectorTest, ErrorsAreFiveHundredsPerSecondPerInstance) {
  clock_.Advance(Duration(10000));
  for (int i = 0; i < 10; ++i) Log(Duration(100 * i), "web", "10.0.0.1:80", 502, 0, "502", "0.001");
  for (int i = 0; i < 5; ++i) Log(Duration(100 * i), "web", "-", 503, 0, "-", "-");  // no backend
  // A retry that succeeded: the backend erred, the client did not see it.
  Log(Duration(0), "web", "10.0.0.1:80, 10.0.0.2:80", 200, 10, "502, 200", "0.001, 0.002");
  collector_->Poll();
  EndpointMetrics m = Get({"10.0.0.1:80", "10.0.0.2:80"});
  EXPECT_DOUBLE_EQ(m.averages["errors"], 15.0 / 5 / 2);
  EXPECT_DOUBLE_EQ(m.total_rate, 16.0 / 5);
  EXPECT_EQ(m.backends["10.0.0.1:80"].errors, 11u);
  EXPECT_EQ(m.backends["10.0.0.1:80"].hits, 11u);
  EXPECT_EQ(m.backends["10.0.0.2:80"].errors, 0u);
  EXPECT_EQ(m.backends["10.0.0.2:80"].bytes, 10u);
}

TEST_F(MetricsCollectorTest, PercentilesWithinTheHistogramsError) {
  clock_.Advance(Duration(10000));
  double sum = 0;
  for (int i = 1; i <= 1000; ++i) {
    Ok(Duration(i % 1000), "10.0.0.1:80", i / 1000.0);  // 1 ms … 1 s
    sum += i / 1000.0;
  }
  collector_->Poll();
  EndpointMetrics m = Get({"10.0.0.1:80"});
  EXPECT_NEAR(m.averages["response"], sum / 1000, 1e-9);
  EXPECT_NEAR(m.averages["response.p50"], 0.500, 0.500 * 0.045);
  EXPECT_NEAR(m.averages["response.p95"], 0.950, 0.950 * 0.045);
  EXPECT_NEAR(m.averages["response.p99"], 0.990, 0.990 * 0.045);
}

TEST_F(MetricsCollectorTest, ResponseBinsBoundTheRelativeError) {
  for (double t = 1e-4; t < 100; t *= 1.01) {
    double v = ResponseBins::ValueOf(ResponseBins::BinOf(t));
    EXPECT_LE(std::abs(v - t) / t, 0.0445) << t;
  }
  EXPECT_EQ(ResponseBins::BinOf(0), 0);
  EXPECT_EQ(ResponseBins::ValueOf(0), 0);
  EXPECT_EQ(ResponseBins::BinOf(1e9), ResponseBins::kCount - 1);
}

TEST_F(MetricsCollectorTest, NoTrafficIsAllZeros) {
  clock_.Advance(Duration(10000));
  EndpointMetrics m = Get({"10.0.0.1:80"});
  for (const char* k :
       {"rate", "bytes", "errors", "active", "response", "response.p50", "response.p95", "response.p99"}) {
    ASSERT_EQ(m.averages.count(k), 1u) << k;
    EXPECT_EQ(m.averages[k], 0) << k;
  }
}

TEST_F(MetricsCollectorTest, WithoutInstancesAveragesAreTotals) {
  clock_.Advance(Duration(10000));
  for (int i = 0; i < 50; ++i) Log(Duration(100 * i), "web", "-", 503, 0, "-", "-");
  collector_->Poll();
  EndpointMetrics m = Get({});
  EXPECT_EQ(m.instances, 0);
  EXPECT_DOUBLE_EQ(m.averages["rate"], 10.0);
  EXPECT_DOUBLE_EQ(m.averages["errors"], 10.0);
}

TEST_F(MetricsCollectorTest, ActiveCountsEstablishedConnectionsPerInstance) {
  auto sock = [](const char* ip, int port, int state) {
    TcpSocket s;
    s.local_ip = "127.0.0.1";
    s.local_port = 40000;
    s.remote_ip = ip;
    s.remote_port = port;
    s.state = state;
    return s;
  };
  std::vector<TcpSocket> tcp = {sock("10.0.0.1", 80, kTcpEstablished),   sock("10.0.0.1", 80, kTcpEstablished),
                                sock("10.0.0.1", 80, 6 /* TIME_WAIT */), sock("10.0.0.2", 80, kTcpEstablished),
                                sock("10.0.0.3", 80, kTcpEstablished),   sock("::1", 81, kTcpEstablished)};
  clock_.Advance(Duration(10000));
  EndpointMetrics m = Get({"10.0.0.1:80", "10.0.0.2:80", "[::1]:81"}, Duration(5000), tcp);
  EXPECT_DOUBLE_EQ(m.averages["active"], 4.0 / 3);
  EXPECT_EQ(m.backends["10.0.0.1:80"].active, 2);
  EXPECT_EQ(m.backends["[::1]:81"].active, 1);
  EXPECT_EQ(m.backends.count("10.0.0.3:80"), 0u);
}

TEST_F(MetricsCollectorTest, EndpointsAreSeparate) {
  clock_.Advance(Duration(10000));
  for (int i = 0; i < 10; ++i) Log(Duration(100 * i), "api", "10.0.0.9:80", 200, 1, "200", "0.001");
  Ok(Duration(0));
  collector_->Poll();
  EXPECT_DOUBLE_EQ(Get({"a"}).total_rate, 1.0 / 5);
  std::vector<TcpSocket> none;
  EXPECT_DOUBLE_EQ(collector_->Metrics("api", Duration(5000), {"a"}, &none).total_rate, 10.0 / 5);
}

TEST_F(MetricsCollectorTest, CountsUnparsedAndForeignLinesAndReportsTheLog) {
  fs_->Append(kLog, "garbage\n1|-|503|190|0.000|-|-|-\n");
  collector_->Poll();
  EXPECT_EQ(collector_->Unparsed(), 1u);
  EXPECT_EQ(collector_->Foreign(), 1u);
  EXPECT_EQ(Get({}).unparsed, 1u);
  EXPECT_EQ(collector_->LogProblem(), "");
  fs_->Remove(kLog);
  MetricsCollector missing("/nowhere/access.log", clock_, std::make_unique<FakeLogFileSystem>());
  missing.Poll();
  EXPECT_NE(missing.LogProblem().find("/nowhere/access.log"), std::string::npos);
  std::vector<TcpSocket> none;
  EXPECT_NE(missing.Metrics("web", Duration(5000), {}, &none).log_problem, "");
}

TEST_F(MetricsCollectorTest, ForgetsEndpointsNobodyAsksAbout) {
  clock_.Advance(Duration(10000));
  Log(Duration(0), "gone", "10.0.0.9:80", 200, 1, "200", "0.001");
  collector_->Poll();
  EXPECT_EQ(collector_->TrackedEndpoints(), 1u);
  clock_.Advance(MetricsCollector::kForgetAfter + Duration(1000));
  collector_->Poll();
  EXPECT_EQ(collector_->TrackedEndpoints(), 0u);
}

TEST_F(MetricsCollectorTest, MetricsMayBeReadFromAnotherThread) {
  clock_.Advance(Duration(10000));
  std::thread reader([this] {
    std::vector<TcpSocket> none;
    for (int i = 0; i < 200; ++i) collector_->Metrics("web", Duration(5000), {"a"}, &none);
  });
  for (int i = 0; i < 200; ++i) {
    Ok(Duration(0));
    collector_->Poll();
  }
  reader.join();
  EXPECT_EQ(Get({"a"}).backends["10.0.0.1:80"].hits, 200u);
}

}  // namespace
}  // namespace reactor
