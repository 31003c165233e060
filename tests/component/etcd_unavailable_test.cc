// When the whole etcd cluster is away: every call fails fast with
// Status::Unavailable saying why (the agent shows it as "store unavailable:
// <why>"), and the same store object works again once etcd is back, its
// watch resuming where it stopped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "agent/store/etcd_store.h"
#include "etcd_fixture.h"

namespace reactor {
namespace {

using std::chrono::steady_clock;
using ::testing::HasSubstr;

TEST(EtcdUnavailable, AllMembersDownIsUnavailableFastAndTheStoreRecovers) {
  EtcdCluster cluster;
  ASSERT_EQ(cluster.Start(3), "");
  auto opened = OpenStore(cluster.Url(), SystemClock::Get());
  ASSERT_TRUE(opened.ok());
  Store& store = **opened;
  auto start = store.Put("/away/a", "1");
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  ASSERT_TRUE(store.Watch("/away/", *start, Duration(100)).ok());  // the stream is open

  for (int i = 0; i < cluster.size(); ++i) cluster.Kill(i);
  const auto t0 = steady_clock::now();
  auto put = store.Put("/away/b", "2");
  const auto took = steady_clock::now() - t0;
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(put.status().message(), HasSubstr("no member of " + cluster.Url().substr(0, 7)));
  EXPECT_THAT(put.status().message(), HasSubstr("Couldn't connect to server"));
  EXPECT_LT(took, std::chrono::seconds(2)) << "every member refused: no reason to wait";
  EXPECT_EQ(store.Get("/away/a").status().code(), Status::Code::kUnavailable);
  auto watch = store.Watch("/away/", *start, Duration(1000));
  ASSERT_FALSE(watch.ok());
  EXPECT_EQ(watch.status().code(), Status::Code::kUnavailable);

  ASSERT_EQ(cluster.RestartAll(), "");
  // A write right after the restart may meet an election: bounded retries.
  Result<int64_t> again = Status::Unavailable("not tried");
  for (int i = 0; i < 50 && !again.ok(); ++i) {
    again = store.Put("/away/c", "3");
    if (!again.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  // The watch resumes after the last event it delivered: it sees /away/c.
  std::vector<WatchEvent> events;
  int64_t rev = *start;
  const auto deadline = steady_clock::now() + std::chrono::seconds(20);
  while (events.empty() && steady_clock::now() < deadline) {
    auto w = store.Watch("/away/", rev, Duration(500));
    if (!w.ok()) continue;
    events = w->events;
    rev = w->revision;
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/away/c");
}

}  // namespace
}  // namespace reactor
