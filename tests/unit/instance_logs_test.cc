// Instance logs are bounded: old logs of instances that no longer run go.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <ctime>
#include <fstream>

#include "agent/cloud/process_cloud.h"

namespace reactor {
namespace {

namespace bfs = boost::filesystem;

class InstanceLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = bfs::temp_directory_path() / bfs::unique_path("reactor-logs-%%%%%%");
    bfs::create_directories(dir_);
  }
  void TearDown() override { bfs::remove_all(dir_); }
  // A file last written `age_s` seconds before now_.
  void Write(const std::string& name, int64_t age_s) {
    std::ofstream(dir_ / name) << "output\n";
    bfs::last_write_time(dir_ / name, static_cast<std::time_t>(now_s_ - age_s));
  }
  bool Exists(const std::string& name) { return bfs::exists(dir_ / name); }

  bfs::path dir_;
  const int64_t now_s_ = 1800000000;
};

TEST_F(InstanceLogsTest, DeletesOnlyOldLogsOfInstancesThatAreGone) {
  Write("web-old.log", 2 * 86400);
  Write("web-recent.log", 60);
  Write("web-live.log", 2 * 86400);
  Write("notes.txt", 2 * 86400);
  bfs::create_symlink(dir_ / "web-old.log", dir_ / "link.log");
  int n = PruneInstanceLogs(dir_.string(), now_s_ * 1000, Duration(86400 * 1000), {"web-live"});
  EXPECT_FALSE(Exists("web-old.log"));
  EXPECT_TRUE(Exists("web-recent.log")) << "within the retention";
  EXPECT_TRUE(Exists("web-live.log")) << "its instance still runs";
  EXPECT_TRUE(Exists("notes.txt")) << "not an instance log";
  EXPECT_TRUE(bfs::is_symlink(bfs::symlink_status(dir_ / "link.log"))) << "links are not followed or removed";
  EXPECT_EQ(n, 1);
}

TEST_F(InstanceLogsTest, MissingDirectoryIsNothingToDo) {
  EXPECT_EQ(PruneInstanceLogs((dir_ / "nope").string(), now_s_ * 1000, Duration(1000), {}), 0);
}

}  // namespace
}  // namespace reactor
