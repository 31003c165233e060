#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "agent/metrics/custom_metrics.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "fake_clock.h"

namespace reactor {
namespace {

class CustomMetricsTest : public ::testing::Test {
 protected:
  CustomMetricsTest() {
    auto s = SqliteStore::Open(":memory:", clock_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    metrics_ = std::make_unique<CustomMetrics>(*store_, clock_);
  }
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<CustomMetrics> metrics_;
};

TEST_F(CustomMetricsTest, PushedValuesAreCurrentUntilTheyExpire) {
  ASSERT_TRUE(metrics_->Push("web", "queue_depth", 42, Duration(30000)).ok());
  ASSERT_TRUE(metrics_->Push("web", "db.load", 0.5).ok());  // default ttl 60 s
  ASSERT_TRUE(metrics_->Push("api", "queue_depth", 7).ok());
  EXPECT_EQ(metrics_->Current("web"), (std::map<std::string, double>{{"db.load", 0.5}, {"queue_depth", 42}}));
  EXPECT_EQ(metrics_->Current("we"), (std::map<std::string, double>{}));

  clock_.Advance(Duration(30000));
  EXPECT_EQ(metrics_->Current("web"), (std::map<std::string, double>{{"db.load", 0.5}}));
  // The expired one was deleted from the store.
  auto kv = store_->Get(CustomMetricKey("web", "queue_depth"));
  ASSERT_TRUE(kv.ok());
  EXPECT_FALSE(kv->has_value());

  clock_.Advance(Duration(30000));
  EXPECT_TRUE(metrics_->Current("web").empty());
  EXPECT_EQ(metrics_->Current("api", clock_.WallMillis() - 1000), (std::map<std::string, double>{{"queue_depth", 7}}));
}

TEST_F(CustomMetricsTest, APushRefreshesTheValueAndTtl) {
  ASSERT_TRUE(metrics_->Push("web", "jobs", 1, Duration(1000)).ok());
  clock_.Advance(Duration(900));
  ASSERT_TRUE(metrics_->Push("web", "jobs", 2, Duration(1000)).ok());
  clock_.Advance(Duration(900));
  EXPECT_EQ(metrics_->Current("web"), (std::map<std::string, double>{{"jobs", 2}}));
}

TEST_F(CustomMetricsTest, RejectsBadNamesAndValues) {
  for (const char* name : {"", "9lives", "queue depth", "a/b", "x-y", "rate", "response", "bytes", "errors", "active",
                           "instances", "response.p50", "response.p99", "response.p75"}) {
    Status st = metrics_->Push("web", name, 1);
    EXPECT_TRUE(st.IsInvalidArgument()) << name << ": " << st.ToString();
  }
  for (double v : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_TRUE(metrics_->Push("web", "jobs", v).IsInvalidArgument()) << v;
  }
  EXPECT_TRUE(metrics_->Push("web", "jobs", 1, Duration(0)).IsInvalidArgument());
  EXPECT_TRUE(metrics_->Push("web", "jobs", 1, Duration(3600 * 1000 + 1)).IsInvalidArgument());
  EXPECT_TRUE(metrics_->Push("web", "jobs", 1, Duration(3600 * 1000)).ok());
  EXPECT_TRUE(metrics_->Push("we/b", "jobs", 1).IsInvalidArgument());
  EXPECT_TRUE(metrics_->Push("web", "response_p99", 0).ok());
  EXPECT_TRUE(metrics_->Push("web", "_private.x1", 0).ok());
}

TEST_F(CustomMetricsTest, SkipsRecordsThatAreNotOurs) {
  ASSERT_TRUE(store_->Put(CustomMetricKey("web", "broken"), "not json").ok());
  ASSERT_TRUE(store_->Put(CustomMetricKey("web", "odd"), R"({"value":"x","expires_ms":1})").ok());
  ASSERT_TRUE(metrics_->Push("web", "good", 3).ok());
  EXPECT_EQ(metrics_->Current("web"), (std::map<std::string, double>{{"good", 3}}));
}

TEST_F(CustomMetricsTest, ClearRemovesAnEndpointsMetrics) {
  ASSERT_TRUE(metrics_->Push("web", "a", 1).ok());
  ASSERT_TRUE(metrics_->Push("web2", "a", 1).ok());
  ASSERT_TRUE(metrics_->Clear("web").ok());
  EXPECT_TRUE(metrics_->Current("web").empty());
  EXPECT_EQ(metrics_->Current("web2").size(), 1u);
}

}  // namespace
}  // namespace reactor
