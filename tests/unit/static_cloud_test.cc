#include "agent/cloud/static_cloud.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

EndpointConfig StaticEndpoint(const std::string& name, std::vector<HostPort> addresses) {
  EndpointConfig ep;
  ep.name = name;
  ep.cloud = CloudKind::kStatic;
  ep.static_instances = std::move(addresses);
  return ep;
}

TEST(StaticCloud, InstanceIdIsDerivedFromTheAddress) {
  EXPECT_EQ(StaticInstanceId({"127.0.0.1", 8080}), "static-127-0-0-1-8080");
  EXPECT_EQ(StaticInstanceId({"Backend.Example.COM", 80}), "static-backend-example-com-80");
  EXPECT_EQ(StaticInstanceId({"[::1]", 9000}), "static----1--9000");
}

TEST(StaticCloud, InstancesFollowTheConfiguredListWithoutDuplicates) {
  auto ep = StaticEndpoint("web", {{"127.0.0.1", 8080}, {"127.0.0.2", 8080}, {"127.0.0.1", 8080}});
  auto instances = StaticInstances(ep);
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_EQ(instances[0].instance_id, "static-127-0-0-1-8080");
  EXPECT_EQ(instances[0].address, "127.0.0.1:8080");
  EXPECT_EQ(instances[0].endpoint, "web");
  EXPECT_TRUE(instances[0].running);
  EXPECT_EQ(instances[1].instance_id, "static-127-0-0-2-8080");
}

TEST(StaticCloud, IdsAreStableAcrossReordering) {
  auto a = StaticInstances(StaticEndpoint("web", {{"10.0.0.1", 1}, {"10.0.0.2", 2}}));
  auto b = StaticInstances(StaticEndpoint("web", {{"10.0.0.2", 2}, {"10.0.0.1", 1}}));
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(a[0].instance_id, b[1].instance_id);
  EXPECT_EQ(a[1].instance_id, b[0].instance_id);
}

TEST(StaticCloud, CollidingAddressesGetDistinctIds) {
  auto instances = StaticInstances(StaticEndpoint("web", {{"a.b", 80}, {"a-b", 80}}));
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_NE(instances[0].instance_id, instances[1].instance_id);
  EXPECT_EQ(instances[0].instance_id.rfind("static-a-b-80-", 0), 0u) << instances[0].instance_id;
  // Stable: the same pair in the other order yields the same ids.
  auto again = StaticInstances(StaticEndpoint("web", {{"a-b", 80}, {"a.b", 80}}));
  EXPECT_EQ(instances[0].instance_id, again[1].instance_id);
}

TEST(StaticCloud, NeverLaunchesRunsNothingAndStopIsANoOp) {
  StaticCloud cloud;
  auto ep = StaticEndpoint("web", {{"127.0.0.1", 8080}});
  LaunchRequest req{"x-1", "m1", &ep};
  auto launched = cloud.Launch(req);
  ASSERT_FALSE(launched.ok());
  EXPECT_TRUE(launched.status().IsInvalidArgument());
  EXPECT_TRUE(cloud.Stop("static-127-0-0-1-8080", Duration(1000)).ok());
  ASSERT_TRUE(cloud.List("m1").ok());
  EXPECT_TRUE(cloud.List("m1")->empty());
  EXPECT_TRUE(cloud.Inspect("static-127-0-0-1-8080").status().IsNotFound());
}

}  // namespace
}  // namespace reactor
