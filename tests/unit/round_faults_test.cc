// The fault-injection tier for the agent's round (issue 10): the Reconciler
// on a real in-memory store, driven through wrappers that make the store,
// nginx or the docker driver fail, slow down or hang. What must hold: a
// fault stops nothing that runs, and the round never waits on a dependency
// that does not answer.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "agent/cloud/async_cloud.h"
#include "agent/endpoint/endpoint_parser.h"
#include "agent/runtime/reconciler.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"
#include "agent/nginx/bounded_nginx_controller.h"
#include "fake_clock.h"
#include "faulty_cloud.h"
#include "faulty_nginx_controller.h"
#include "faulty_store.h"
#include "reconciler_fakes.h"
#include "recording_nginx.h"

namespace reactor {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

class RoundFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(SqliteStore::Open(":memory:", clock_)).value();
    faulty_ = std::make_unique<FaultyStore>(*store_);
    events_ = std::make_unique<EventLog>(*faulty_, clock_);
  }
  void TearDown() override { faulty_->Release(); }

  Reconciler& Make(NginxController& nginx, Cloud& cloud) {
    ReconcilerOptions o;
    o.manager = "m1";
    o.min_drain = Duration(1000);
    reconciler_ = std::make_unique<Reconciler>(o, *faulty_, *events_, nginx, health_,
                                               std::map<CloudKind, Cloud*>{{CloudKind::kProcess, &cloud}}, policy_,
                                               clock_, [](const std::string&) { return 0; });
    return *reconciler_;
  }
  Reconciler& Make() { return Make(nginx_, cloud_); }

  void Manage(const std::string& name) {
    std::string ini = "[endpoint]\nurl = http://127.0.0.1:" + std::to_string(18080 + managed_++) +
                      "/\ncloud = process\n[scaling]\nmin_instances = 0\nmax_instances = 20\nramp_limit = 5\n"
                      "[cloud:process]\ncommand = /bin/true\n";
    auto r = EndpointRegistry(*store_, nullptr).Put(name, ini, "api");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  Status Round() {
    Status st = reconciler_->RunOnce();
    clock_.Advance(Duration(500));
    return st;
  }

  std::map<std::string, int> States(const std::string& endpoint = "web") {
    std::map<std::string, int> out;
    auto list = InstanceTable(*store_).List(endpoint).value();
    for (const auto& r : list) out[InstanceStateName(r.state)]++;
    return out;
  }

  size_t Running() {
    std::lock_guard<std::mutex> lock(cloud_.mu);
    return cloud_.running.size();
  }

  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<FaultyStore> faulty_;
  std::unique_ptr<EventLog> events_;
  FakeCloud cloud_;
  FakeNginx nginx_;
  FakeHealth health_;
  FixedPolicy policy_;
  int managed_ = 0;
  std::unique_ptr<Reconciler> reconciler_;
};

// The store fails in the middle of a round (a round reads the endpoints,
// the instances and the cluster, then writes): whether it goes away after
// any one of the round's calls, or loses just that one request, nothing is
// stopped, drained or removed, and the next good round finds everything as
// it was.
class StoreLossTest : public RoundFaultsTest, public ::testing::WithParamInterface<bool> {};

TEST_P(StoreLossTest, StoreFailingAtAnyCallOfARoundRetiresNothing) {
  const bool only_one = GetParam();
  Manage("web");
  Manage("api");
  Make();
  policy_.target = 2;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Round().ok());
  ASSERT_EQ(States("web")["active"], 2);
  ASSERT_EQ(States("api")["active"], 2);
  ASSERT_EQ(Running(), 4u);

  const int before = faulty_->calls;
  ASSERT_TRUE(Round().ok());
  const int per_round = faulty_->calls - before;
  ASSERT_GT(per_round, 3) << "a round reads at least endpoints, instances and the cluster";
  RecordProperty("calls_per_round", per_round);

  for (int k = 0; k <= per_round; ++k) {
    if (only_one) {
      faulty_->FailOnly(k);
    } else {
      faulty_->FailAfter(k);
    }
    (void)Round();  // may succeed if k is past its last call
    faulty_->ClearFailAfter();
    EXPECT_EQ(cloud_.stops, 0) << "call " << k << " failed and an instance was stopped";
    EXPECT_EQ(Running(), 4u) << "call " << k << " failed";
    EXPECT_EQ(cloud_.launches, 4) << "call " << k << " failed";
    ASSERT_TRUE(Round().ok()) << "the store is back";
    EXPECT_EQ(States("web")["active"], 2) << "call " << k << " failed";
    EXPECT_EQ(States("api")["active"], 2) << "call " << k << " failed";
    EXPECT_EQ(nginx_.members["web"].size(), 2u) << "call " << k << " failed";
    EXPECT_EQ(nginx_.members["api"].size(), 2u) << "call " << k << " failed";
  }
}

INSTANTIATE_TEST_SUITE_P(GoneOrOneRequestLost, StoreLossTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "OneRequestLost" : "StoreGoneFromThatCallOn";
                         });

// A store that stops answering in the middle of a round (an etcd leader
// election) holds that round, and nothing else happens meanwhile; when it
// answers, the round finishes with everything still running.
TEST_F(RoundFaultsTest, StoreThatHangsMidRoundThenAnswersStopsNothing) {
  Manage("web");
  Make();
  policy_.target = 2;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Round().ok());
  ASSERT_EQ(Running(), 2u);

  faulty_->Hang();
  auto round = std::async(std::launch::async, [this] { return reconciler_->RunOnce(); });
  ASSERT_TRUE(faulty_->WaitUntilHung(milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(round.wait_for(milliseconds(0)), std::future_status::timeout) << "the round did not wait for the store";
  EXPECT_EQ(cloud_.stops, 0);
  faulty_->Release();
  ASSERT_EQ(round.wait_for(milliseconds(5000)), std::future_status::ready);
  EXPECT_TRUE(round.get().ok());
  EXPECT_EQ(cloud_.stops, 0);
  EXPECT_EQ(Running(), 2u);
  EXPECT_EQ(States()["active"], 2);
}

// A slow store (every call 5 ms late) makes a round slower, never wrong.
TEST_F(RoundFaultsTest, SlowStoreChangesNothingButTime) {
  Manage("web");
  Make();
  policy_.target = 2;
  faulty_->delay_ms = 5;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Round().ok());
  EXPECT_EQ(States()["active"], 2);
  EXPECT_EQ(cloud_.launches, 2);
  EXPECT_EQ(nginx_.members["web"].size(), 2u);
}

template <typename F>
bool Eventually(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return f();
}

// The loop's interval (SPEC §3 default): a round must stay within it.
constexpr milliseconds kInterval{1000};

// nginx's controller fails every call: the round still runs (instances are
// launched and recorded), says so in the endpoint's log, and pushes the
// members it could not push once the controller works again.
TEST_F(RoundFaultsTest, NginxErrorsDoNotStopTheRoundAndUnpushedMembersArePushedAgain) {
  FaultyNginxController faulty(nginx_);
  faulty.Fail(FaultyNginxController::Call::kApplySites, Status::Internal("injected: nginx -t failed"));
  faulty.Fail(FaultyNginxController::Call::kSetMembers, Status::Unavailable("injected: control socket refused"));
  faulty.Fail(FaultyNginxController::Call::kFlush, Status::Internal("injected: reload failed"));
  Manage("web");
  Make(faulty, cloud_);
  policy_.target = 2;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Round().ok());
  EXPECT_EQ(States()["active"], 2) << "nginx errors held up the instances";
  EXPECT_TRUE(nginx_.members["web"].empty());
  int said = 0;
  auto events = events_->Read("web", 0).value();
  for (const auto& e : events) {
    said += e.message.find("cannot update upstream members") != std::string::npos;
  }
  EXPECT_GE(said, 1);

  faulty.ClearFaults();
  ASSERT_TRUE(Round().ok());
  EXPECT_EQ(nginx_.members["web"].size(), 2u) << "members not pushed during the errors were not pushed again";
  EXPECT_EQ(nginx_.sites, 1u);
  reconciler_.reset();  // before the controller it uses
}

// nginx's controller hangs (stuck on a wedged nginx, or behind the route
// watcher's call): the agent reaches it through BoundedNginxController, so
// every round still ends within the interval and does its other work; once
// the controller answers, nginx gets the newest sites and members.
TEST_F(RoundFaultsTest, HungNginxControllerDoesNotHoldTheRoundPastItsInterval) {
  RecordingNginx real;
  FaultyNginxController faulty(real);
  BoundedNginxController bounded(faulty, BoundedNginxController::Options{});
  Manage("web");
  Manage("api");
  Make(bounded, cloud_);
  policy_.target = 2;
  faulty.Hang(FaultyNginxController::Call::kApplySites);
  faulty.Hang(FaultyNginxController::Call::kSetMembers);
  faulty.Hang(FaultyNginxController::Call::kHeldBack);
  for (int i = 0; i < 4; ++i) {
    auto start = steady_clock::now();
    EXPECT_TRUE(Round().ok());
    EXPECT_LT(steady_clock::now() - start, kInterval) << "round " << i << " waited on a hung nginx controller";
  }
  EXPECT_EQ(States("web")["active"], 2) << "a hung nginx held up the instances";
  EXPECT_EQ(States("api")["active"], 2);
  EXPECT_EQ(real.Sites(), 0u);

  faulty.Release();
  ASSERT_TRUE(Eventually([&] { return real.Sites() == 2u; }));
  ASSERT_TRUE(Eventually([&] { return real.MembersOf("web") == 2u && real.MembersOf("api") == 2u; }))
      << "what was asked while the controller hung was never done";
  ASSERT_TRUE(Round().ok());
  EXPECT_EQ(real.MembersOf("web"), 2u);
  reconciler_.reset();  // before the controller it uses
}

// dockerd hangs on every call: the agent reaches it through AsyncCloud, so
// a round that launches still ends within the interval, the launch shows as
// starting, and it completes once dockerd answers.
TEST_F(RoundFaultsTest, HangingDockerLaunchDoesNotHoldTheRound) {
  FaultyCloud docker(cloud_);
  docker.Hang(FaultyCloud::Call::kLaunch);
  docker.Hang(FaultyCloud::Call::kList);
  {
    AsyncCloud async(docker, "m1", SystemClock::Get(), Duration(20));
    Manage("web");
    Make(nginx_, async);
    policy_.target = 2;
    for (int i = 0; i < 4; ++i) {
      auto start = steady_clock::now();
      (void)Round();  // the first listing is Unavailable while dockerd hangs
      EXPECT_LT(steady_clock::now() - start, kInterval) << "round " << i << " waited on a hanging docker";
    }
    ASSERT_TRUE(docker.WaitUntilHung(milliseconds(5000)));
    EXPECT_EQ(cloud_.launches, 0);
    EXPECT_EQ(cloud_.stops, 0);

    docker.Release();
    ASSERT_TRUE(Eventually([&] {
      (void)Round();
      return States()["active"] == 2;
    })) << "the launches never completed once docker answered";
    EXPECT_EQ(nginx_.members["web"].size(), 2u);
    reconciler_.reset();  // before the AsyncCloud it uses
  }
}

}  // namespace
}  // namespace reactor
