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

TEST(StaticCloud, NeverLaunchesAndStopIsANoOp) {
  StaticCloud cloud;
  auto ep = StaticEndpoint("web", {{"127.0.0.1", 8080}});
  cloud.SetEndpoint(ep);
  LaunchRequest req{"x-1", "m1", &ep};
  auto launched = cloud.Launch(req);
  ASSERT_FALSE(launched.ok());
  EXPECT_TRUE(launched.status().IsInvalidArgument());
  EXPECT_TRUE(cloud.Stop("static-127-0-0-1-8080", Duration(1000)).ok());
  ASSERT_TRUE(cloud.List("m1").ok());
  EXPECT_EQ(cloud.List("m1")->size(), 1u);
}

TEST(StaticCloud, ListsEveryEndpointForAnyManagerAndForgetsRemovedOnes) {
  StaticCloud cloud;
  cloud.SetEndpoint(StaticEndpoint("b", {{"127.0.0.1", 2}}));
  cloud.SetEndpoint(StaticEndpoint("a", {{"127.0.0.1", 1}, {"127.0.0.1", 3}}));
  auto all = cloud.List("any-manager");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].endpoint, "a");
  EXPECT_EQ((*all)[2].endpoint, "b");

  cloud.SetEndpoint(StaticEndpoint("a", {{"127.0.0.1", 4}}));
  cloud.RemoveEndpoint("b");
  all = cloud.List("m");
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].address, "127.0.0.1:4");
}

TEST(StaticCloud, InspectFindsByIdOrReportsNotFound) {
  StaticCloud cloud;
  cloud.SetEndpoint(StaticEndpoint("web", {{"127.0.0.1", 8080}}));
  auto found = cloud.Inspect("static-127-0-0-1-8080");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->address, "127.0.0.1:8080");
  EXPECT_TRUE(cloud.Inspect("static-127-0-0-1-9").status().IsNotFound());
}

}  // namespace
}  // namespace reactor
