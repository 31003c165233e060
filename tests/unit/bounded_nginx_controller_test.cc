// BoundedNginxController over a FaultyNginxController: a controller that
// hangs, is slow or fails never holds its caller past the budget, and what
// it could not do in time is still done, newest arguments first.
#include "agent/nginx/bounded_nginx_controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "faulty_nginx_controller.h"
#include "recording_nginx.h"

namespace reactor {
namespace {

using Call = FaultyNginxController::Call;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::vector<EndpointConfig> Sites(int n) {
  std::vector<EndpointConfig> out(n);
  for (int i = 0; i < n; ++i) out[i].name = "e" + std::to_string(i);
  return out;
}

template <typename F>
bool Eventually(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return f();
}

template <typename F>
milliseconds Took(F f) {
  auto start = steady_clock::now();
  f();
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

class BoundedNginxTest : public ::testing::Test {
 protected:
  void TearDown() override { faulty_.Release(); }
  RecordingNginx real_;
  FaultyNginxController faulty_{real_};
  BoundedNginxController::Options options_{Duration(200), Duration(1000)};
};

TEST_F(BoundedNginxTest, AnsweringControllerIsWaitedForAndItsAnswersPassThrough) {
  BoundedNginxController bounded(faulty_, options_);
  EXPECT_TRUE(bounded.ApplySites(Sites(3)).ok());
  EXPECT_EQ(real_.Sites(), 3u) << "done before ApplySites returned";
  EXPECT_TRUE(bounded.SetMembers("e0", {{"127.0.0.1:1", 1}}).ok());
  EXPECT_EQ(real_.MembersOf("e0"), 1u);
  EXPECT_EQ(bounded.UntilFlushDue(), Duration(0));
  EXPECT_EQ(bounded.ReloadCount(), 7);
  EXPECT_EQ(bounded.HeldBack().count("bad"), 1u);

  faulty_.Fail(Call::kSetMembers, Status::InvalidArgument("bad address"));
  Status st = bounded.SetMembers("e0", {});
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_EQ(real_.MembersOf("e0"), 1u);
}

TEST_F(BoundedNginxTest, HungControllerHoldsTheCallerOnceForTheBudgetThenNotAtAll) {
  BoundedNginxController bounded(faulty_, options_);
  ASSERT_EQ(bounded.ReloadCount(), 7);
  faulty_.Hang(Call::kApplySites);
  Status st;
  milliseconds first = Took([&] { st = bounded.ApplySites(Sites(1)); });
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("ApplySites is queued"), std::string::npos) << st.message();
  EXPECT_GE(first, milliseconds(150));
  EXPECT_LT(first, milliseconds(1000)) << "waited past the budget";
  ASSERT_TRUE(faulty_.WaitUntilHung(milliseconds(1000)));

  // The call in flight has run past the budget: nothing waits on it again,
  // whatever is asked (a new window included).
  std::this_thread::sleep_for(milliseconds(1000));
  milliseconds rest = Took([&] {
    for (int i = 0; i < 50; ++i) (void)bounded.SetMembers("e" + std::to_string(i % 5), {{"127.0.0.1:2", 1}});
    (void)bounded.ApplySites(Sites(4));
    (void)bounded.ApplySites(Sites(5));
    EXPECT_FALSE(bounded.Flush().ok());
    EXPECT_FALSE(bounded.Supervise().ok());
    EXPECT_EQ(bounded.UntilFlushDue(), std::nullopt) << "a stale 'due now' would spin the loop";
    EXPECT_EQ(bounded.ReloadCount(), 7) << "what it said last";
  });
  EXPECT_LT(rest, milliseconds(100)) << "a hung controller was waited on again";

  // Once it answers, what was queued is done, newest arguments only.
  faulty_.Release();
  ASSERT_TRUE(Eventually([&] { return real_.Sites() == 5u && real_.MembersOf("e4") == 1u; }));
  EXPECT_EQ(real_.Applied(), 2) << "the hung call and the newest queued one, not every one asked";
  EXPECT_EQ(faulty_.Calls(Call::kSetMembers), 5) << "one per endpoint, however often asked";
  EXPECT_TRUE(bounded.ApplySites(Sites(6)).ok());
  EXPECT_EQ(real_.Sites(), 6u);
}

TEST_F(BoundedNginxTest, SlowControllerCostsItsCallersTheBudgetPerWindowNotOneWaitPerCall) {
  BoundedNginxController bounded(faulty_, options_);
  faulty_.Delay(Call::kSetMembers, milliseconds(40));
  int ok = 0;
  milliseconds took = Took([&] {
    for (int i = 0; i < 20; ++i) ok += bounded.SetMembers("e" + std::to_string(i), {{"127.0.0.1:3", 1}}).ok();
  });
  EXPECT_LT(took, milliseconds(600)) << "20 calls of 40 ms were each waited for (800 ms)";
  EXPECT_GE(ok, 1);
  EXPECT_LT(ok, 20);
  // Every one is still made.
  ASSERT_TRUE(Eventually([&] { return faulty_.Calls(Call::kSetMembers) == 20; }));
  EXPECT_TRUE(Eventually([&] { return real_.MembersOf("e19") == 1u; }));
}

}  // namespace
}  // namespace reactor
