// Prometheus text (escaping, number format, families kept together), the
// counter registry, and the request totals behind /metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "agent/metrics/request_totals.h"
#include "agent/telemetry/counter_registry.h"
#include "agent/telemetry/prometheus_text.h"

namespace reactor {
namespace {

TEST(PrometheusText, EscapesBackslashQuoteAndNewlineInLabelValues) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(EscapeLabelValue("plain-name_1"), "plain-name_1");
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");
}

TEST(PrometheusText, FormatsValuesAsPrometheusReadsThem) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(42), "42");
  EXPECT_EQ(FormatSampleValue(-3), "-3");
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");  // the shortest text that reads back the same
  EXPECT_EQ(std::strtod(FormatSampleValue(1.0 / 3).c_str(), nullptr), 1.0 / 3);
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatSampleValue(1e20), "1e+20");
}

TEST(PrometheusText, KeepsSamplesOfOneFamilyTogether) {
  PrometheusText t;
  t.Family("a_total", "counter", "A things.");
  t.Family("b", "gauge", "B\nlevel.");
  t.Sample("a_total", {{"endpoint", "x"}}, 1);
  t.Sample("b", {}, 2.5);
  t.Sample("a_total", {{"endpoint", "y\"z"}}, 3);
  EXPECT_EQ(t.Render(),
            "# HELP a_total A things.\n"
            "# TYPE a_total counter\n"
            "a_total{endpoint=\"x\"} 1\n"
            "a_total{endpoint=\"y\\\"z\"} 3\n"
            "# HELP b B\\nlevel.\n"
            "# TYPE b gauge\n"
            "b 2.5\n");
}

TEST(PrometheusText, HistogramSamplesCarryTheirSuffix) {
  PrometheusText t;
  t.Family("d_seconds", "histogram", "D.");
  t.Sample("d_seconds", "d_seconds_bucket", {{"le", "+Inf"}}, 2);
  t.Sample("d_seconds", "d_seconds_count", {}, 2);
  EXPECT_NE(t.Render().find("d_seconds_bucket{le=\"+Inf\"} 2\nd_seconds_count 2\n"), std::string::npos);
}

TEST(CounterRegistry, AddsPerSeriesAndNeverGoesDown) {
  CounterRegistry r;
  r.Add("x_total", {{"result", "ok"}});
  r.Add("x_total", {{"result", "ok"}}, 2);
  r.Add("x_total", {{"result", "failed"}});
  r.Add("x_total", {{"result", "ok"}}, -5);
  r.Add("x_total", {{"result", "ok"}}, std::nan(""));
  EXPECT_EQ(r.Value("x_total", {{"result", "ok"}}), 3);
  EXPECT_EQ(r.Value("x_total", {{"result", "failed"}}), 1);
  EXPECT_EQ(r.Value("x_total", {{"result", "other"}}), 0);
  auto snap = r.Snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].labels[0].second, "failed");  // ordered by labels
}

TEST(CounterRegistry, ForgetsTheSeriesOfAnUnmanagedEndpoint) {
  CounterRegistry r;
  r.Add("h_total", {{"endpoint", "web"}, {"result", "success"}});
  r.Add("h_total", {{"endpoint", "api"}, {"result", "success"}});
  r.ForgetLabel("endpoint", "web");
  EXPECT_EQ(r.Value("h_total", {{"endpoint", "web"}, {"result", "success"}}), 0);
  EXPECT_EQ(r.Value("h_total", {{"endpoint", "api"}, {"result", "success"}}), 1);
}

TEST(CounterRegistry, StopsCreatingSeriesAtTheCap) {
  CounterRegistry r;
  for (size_t i = 0; i < CounterRegistry::kMaxSeries + 10; ++i) r.Add("c_total", {{"i", std::to_string(i)}});
  EXPECT_EQ(r.Snapshot().size(), CounterRegistry::kMaxSeries);
  EXPECT_EQ(r.DroppedSeries(), 10u);
  r.Add("c_total", {{"i", "0"}});  // existing series still count
  EXPECT_EQ(r.Value("c_total", {{"i", "0"}}), 2);
}

TEST(RequestTotals, CountsClassesBytesAndCumulativeBuckets) {
  RequestTotals t;
  LogRecord r;
  r.status = 200;
  r.bytes = 100;
  r.request_time = 0.003;
  t.Add(r);
  r.status = 503;
  r.bytes = 10;
  r.request_time = 0.3;
  t.Add(r);
  r.status = 0;  // nginx logged no status: counted, in no class
  r.request_time = 30;
  t.Add(r);
  EXPECT_EQ(t.requests, 3u);
  EXPECT_EQ(t.by_class[1], 1u);
  EXPECT_EQ(t.by_class[4], 1u);
  EXPECT_EQ(t.bytes, 120u);
  EXPECT_DOUBLE_EQ(t.duration_sum, 30.303);
  EXPECT_EQ(t.CumulativeBucket(0), 0u);                                   // <= 1 ms
  EXPECT_EQ(t.CumulativeBucket(1), 1u);                                   // <= 5 ms
  EXPECT_EQ(t.CumulativeBucket(6), 1u);                                   // <= 250 ms: 0.3 s is above
  EXPECT_EQ(t.CumulativeBucket(7), 2u);                                   // <= 500 ms
  EXPECT_EQ(t.CumulativeBucket(RequestTotals::kBuckets.size() - 1), 2u);  // 30 s only in +Inf
}

}  // namespace
}  // namespace reactor
