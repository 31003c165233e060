// AsyncCloud over a driver that hangs until the test lets it go: the caller
// (the agent's loop) is never held up.
#include "agent/cloud/async_cloud.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace reactor {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Every call blocks while `hang` is set (like a dockerd that accepts the
// connection and never answers).
class HangingCloud : public Cloud {
 public:
  const char* Name() const override { return "docker"; }
  Result<InstanceInfo> Launch(const LaunchRequest& req) override {
    Block();
    std::lock_guard<std::mutex> lock(mu);
    if (fail) return Status::Unavailable("image not found");
    InstanceInfo i;
    i.instance_id = req.instance_id;
    i.endpoint = req.endpoint->name;
    i.address = "127.0.0.1:20001";
    i.running = true;
    running[i.instance_id] = i;
    return i;
  }
  Status Stop(const std::string& id, Duration) override {
    std::lock_guard<std::mutex> lock(mu);
    running.erase(id);
    stops++;
    return Status::Ok();
  }
  Result<std::vector<InstanceInfo>> List(const std::string&) override {
    Block();
    std::lock_guard<std::mutex> lock(mu);
    std::vector<InstanceInfo> out;
    for (auto& [id, i] : running) out.push_back(i);
    return out;
  }
  Result<InstanceInfo> Inspect(const std::string& id) override { return Status::NotFound(id); }

  void SetHang(bool h) {
    std::lock_guard<std::mutex> lock(mu);
    hang = h;
    cv.notify_all();
  }
  void Block() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return !hang; });
  }

  std::mutex mu;
  std::condition_variable cv;
  bool hang = false;
  bool fail = false;
  int stops = 0;
  std::map<std::string, InstanceInfo> running;
};

template <typename F>
bool Eventually(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return f();
}

EndpointConfig Endpoint() {
  EndpointConfig c;
  c.name = "web";
  return c;
}

std::optional<InstanceInfo> Find(AsyncCloud& cloud, const std::string& id) {
  auto list = cloud.List("m1");
  if (!list.ok()) return std::nullopt;
  for (auto& i : *list) {
    if (i.instance_id == id) return i;
  }
  return std::nullopt;
}

TEST(AsyncCloud, AHangingDriverNeverHoldsUpTheCaller) {
  HangingCloud driver;
  driver.SetHang(true);
  {
    AsyncCloud cloud(driver, "m1", SystemClock::Get(), Duration(20));
    EndpointConfig ep = Endpoint();
    auto start = steady_clock::now();
    auto first = cloud.List("m1");
    EXPECT_FALSE(first.ok());
    EXPECT_EQ(first.status().code(), Status::Code::kUnavailable);
    auto launched = cloud.Launch({"web-1", "m1", &ep});
    ASSERT_TRUE(launched.ok());
    EXPECT_TRUE(launched->pending);
    for (int i = 0; i < 3; ++i) (void)cloud.List("m1");  // each waits 200 ms at most
    EXPECT_LT(steady_clock::now() - start, milliseconds(1500)) << "the caller waited on the driver";

    driver.SetHang(false);
    ASSERT_TRUE(Eventually([&] {
      auto i = Find(cloud, "web-1");
      return i && i->running && i->address == "127.0.0.1:20001";
    }));
  }
}

TEST(AsyncCloud, LaunchInFlightIsListedPendingAndAFailureAsExited) {
  HangingCloud driver;
  AsyncCloud cloud(driver, "m1", SystemClock::Get(), Duration(20));
  ASSERT_TRUE(Eventually([&] { return cloud.List("m1").ok(); }));
  driver.SetHang(true);
  EndpointConfig ep = Endpoint();
  ASSERT_TRUE(cloud.Launch({"web-1", "m1", &ep}).ok());
  auto i = Find(cloud, "web-1");
  ASSERT_TRUE(i.has_value()) << "a launch in flight vanished from the listing";
  EXPECT_TRUE(i->pending);
  {
    std::lock_guard<std::mutex> lock(driver.mu);
    driver.fail = true;
  }
  driver.SetHang(false);
  ASSERT_TRUE(Eventually([&] {
    auto f = Find(cloud, "web-1");
    return f && !f->pending && !f->running;
  }));
  EXPECT_EQ(Find(cloud, "web-1")->detail, "launch failed: image not found");
  ASSERT_TRUE(cloud.Stop("web-1", Duration(0)).ok());
  EXPECT_FALSE(Find(cloud, "web-1").has_value()) << "a stopped failure is forgotten";
}

TEST(AsyncCloud, AQueuedLaunchIsCancelledByStop) {
  HangingCloud driver;
  AsyncCloud cloud(driver, "m1", SystemClock::Get(), Duration(20));
  ASSERT_TRUE(Eventually([&] { return cloud.List("m1").ok(); }));
  driver.SetHang(true);
  EndpointConfig ep = Endpoint();
  ASSERT_TRUE(cloud.Launch({"web-1", "m1", &ep}).ok());  // in flight, blocked
  ASSERT_TRUE(cloud.Launch({"web-2", "m1", &ep}).ok());  // queued behind it
  ASSERT_TRUE(cloud.Stop("web-2", Duration(0)).ok());
  driver.SetHang(false);
  ASSERT_TRUE(Eventually([&] {
    auto one = Find(cloud, "web-1");
    return one && one->running;
  }));
  std::this_thread::sleep_for(milliseconds(100));
  std::lock_guard<std::mutex> lock(driver.mu);
  EXPECT_EQ(driver.running.count("web-2"), 0u) << "a cancelled launch ran";
}

}  // namespace
}  // namespace reactor
