#include "agent/health/health_threshold.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

TEST(HealthThreshold, PendingUntilRiseSuccesses) {
  HealthThreshold t(3, 2);
  EXPECT_EQ(t.Record(true), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(true), HealthTransition::kChangePending);
  EXPECT_EQ(t.state(), HealthState::kPending);
  EXPECT_EQ(t.Record(true), HealthTransition::kChanged);
  EXPECT_EQ(t.state(), HealthState::kHealthy);
  EXPECT_EQ(t.Record(true), HealthTransition::kUnchanged);
}

TEST(HealthThreshold, FailureResetsRiseCount) {
  HealthThreshold t(2, 2);
  t.Record(true);
  EXPECT_EQ(t.Record(false), HealthTransition::kUnchanged);  // still pending
  EXPECT_EQ(t.Record(true), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(true), HealthTransition::kChanged);
}

TEST(HealthThreshold, FallsAfterConsecutiveFailuresOnly) {
  HealthThreshold t(1, 3);
  EXPECT_EQ(t.Record(true), HealthTransition::kChanged);
  EXPECT_EQ(t.Record(false), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(false), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(true), HealthTransition::kUnchanged);  // streak broken
  EXPECT_EQ(t.Record(false), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(false), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(false), HealthTransition::kChanged);
  EXPECT_EQ(t.state(), HealthState::kUnhealthy);
  EXPECT_EQ(t.consecutive_failures(), 3);
}

TEST(HealthThreshold, UnhealthyRejoinsAfterRise) {
  HealthThreshold t(2, 1);
  t.Record(true);
  t.Record(true);
  EXPECT_EQ(t.Record(false), HealthTransition::kChanged);
  EXPECT_EQ(t.Record(true), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(true), HealthTransition::kChanged);
  EXPECT_EQ(t.state(), HealthState::kHealthy);
}

}  // namespace
}  // namespace reactor

namespace reactor {
namespace {

TEST(HealthThreshold, AdoptedInstanceCanFallWithoutRising) {
  HealthThreshold t(2, 2, /*initially_healthy=*/true);
  EXPECT_EQ(t.state(), HealthState::kHealthy);
  EXPECT_EQ(t.Record(false), HealthTransition::kChangePending);
  EXPECT_EQ(t.Record(false), HealthTransition::kChanged);
  EXPECT_EQ(t.state(), HealthState::kUnhealthy);
}

}  // namespace
}  // namespace reactor
