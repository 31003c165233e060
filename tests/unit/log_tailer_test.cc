#include "agent/metrics/log_tailer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_log_file_system.h"

namespace reactor {
namespace {

const std::string kPath = "/var/log/reactor/access.log";

class LogTailerTest : public ::testing::Test {
 protected:
  std::vector<std::string> Read(LogTailer& t) {
    std::vector<std::string> lines;
    t.ReadNewLines([&](std::string_view l) { lines.emplace_back(l); });
    return lines;
  }
  LogTailer::Options FromStart() {
    LogTailer::Options o;
    o.start_at_end = false;
    return o;
  }
  FakeLogFileSystem fs_;
  using Lines = std::vector<std::string>;
};

TEST_F(LogTailerTest, ReadsAppendedLines) {
  fs_.Append(kPath, "a\nb\n");
  LogTailer t(kPath, fs_, FromStart());
  EXPECT_EQ(Read(t), (Lines{"a", "b"}));
  EXPECT_EQ(Read(t), Lines{});
  fs_.Append(kPath, "c\n");
  EXPECT_EQ(Read(t), Lines{"c"});
  EXPECT_EQ(t.Problem(), "");
}

TEST_F(LogTailerTest, StartsAtTheEndOfAnExistingFileByDefault) {
  fs_.Append(kPath, "old1\nold2\n");
  LogTailer t(kPath, fs_);
  EXPECT_EQ(Read(t), Lines{});
  fs_.Append(kPath, "new\n");
  EXPECT_EQ(Read(t), Lines{"new"});
}

TEST_F(LogTailerTest, StartingAtTheEndSkipsAPartialLastLine) {
  fs_.Append(kPath, "old\npart");
  LogTailer t(kPath, fs_);
  EXPECT_EQ(Read(t), Lines{});
  fs_.Append(kPath, "ial\nnew\n");
  EXPECT_EQ(Read(t), Lines{"new"});
}

TEST_F(LogTailerTest, HoldsAPartialLineUntilItsNewline) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "first\nsec");
  EXPECT_EQ(Read(t), Lines{"first"});
  fs_.Append(kPath, "ond");
  EXPECT_EQ(Read(t), Lines{});
  fs_.Append(kPath, "\nthird\n");
  EXPECT_EQ(Read(t), (Lines{"second", "third"}));
}

TEST_F(LogTailerTest, FileMissingThenAppearsIsReadFromItsStart) {
  LogTailer t(kPath, fs_);  // start_at_end applies only to a file there at the first call
  EXPECT_EQ(Read(t), Lines{});
  EXPECT_NE(t.Problem().find("No such file"), std::string::npos);
  EXPECT_EQ(Read(t), Lines{});
  fs_.Append(kPath, "x\ny\n");
  EXPECT_EQ(Read(t), (Lines{"x", "y"}));
  EXPECT_EQ(t.Problem(), "");
}

TEST_F(LogTailerTest, UnreadableFileIsReportedAndRetried) {
  fs_.Append(kPath, "x\n");
  fs_.SetUnreadable(true);
  LogTailer t(kPath, fs_, FromStart());
  EXPECT_EQ(Read(t), Lines{});
  EXPECT_NE(t.Problem().find("Permission denied"), std::string::npos);
  fs_.SetUnreadable(false);
  EXPECT_EQ(Read(t), Lines{"x"});
  EXPECT_EQ(t.Problem(), "");
}

TEST_F(LogTailerTest, RenameRotationFinishesTheOldFileFirst) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "1\n");
  EXPECT_EQ(Read(t), Lines{"1"});
  // Lines written after our last read, then rotated, then a new file.
  fs_.Append(kPath, "2\n3\n");
  fs_.Rename(kPath, kPath + ".1");
  fs_.Append(kPath, "4\n");
  EXPECT_EQ(Read(t), (Lines{"2", "3", "4"}));
  EXPECT_EQ(t.Rotations(), 1u);
  // nginx writes to the old file until it reopens its logs: still counted.
  fs_.Append(kPath + ".1", "late\n");
  fs_.Append(kPath, "5\n");
  EXPECT_EQ(Read(t), (Lines{"late", "5"}));
  EXPECT_EQ(Read(t), Lines{});
}

TEST_F(LogTailerTest, RotationWithoutANewFileKeepsReadingTheOldOne) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "1\n");
  EXPECT_EQ(Read(t), Lines{"1"});
  fs_.Rename(kPath, kPath + ".1");
  fs_.Append(kPath + ".1", "2\n");
  EXPECT_EQ(Read(t), Lines{"2"});
  EXPECT_NE(t.Problem().find("missing"), std::string::npos);
  fs_.Append(kPath, "3\n");
  EXPECT_EQ(Read(t), Lines{"3"});
  EXPECT_EQ(t.Problem(), "");
}

TEST_F(LogTailerTest, RotatedFileIsClosedAfterBeingIdle) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "1\n");
  Read(t);
  fs_.Rename(kPath, kPath + ".1");
  fs_.Append(kPath, "2\n");
  EXPECT_EQ(Read(t), Lines{"2"});
  for (int i = 0; i < LogTailer::kRotatedIdleCalls; ++i) Read(t);
  fs_.Append(kPath + ".1", "too late\n");
  EXPECT_EQ(Read(t), Lines{});
}

TEST_F(LogTailerTest, CopyTruncateRestartsAtZero) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "1\n2\n");
  EXPECT_EQ(Read(t), (Lines{"1", "2"}));
  fs_.CopyTruncate(kPath, kPath + ".1");
  fs_.Append(kPath, "3\n");
  EXPECT_EQ(Read(t), Lines{"3"});
  EXPECT_EQ(t.Truncations(), 1u);
}

TEST_F(LogTailerTest, TruncatedAndRefilledPastTheOffsetIsDetected) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "1700000000.001|first line\n");
  EXPECT_EQ(Read(t), Lines{"1700000000.001|first line"});
  fs_.Truncate(kPath);
  fs_.Append(kPath, "1700000000.002|second line, now longer\n");
  EXPECT_EQ(Read(t), Lines{"1700000000.002|second line, now longer"});
  EXPECT_EQ(t.Truncations(), 1u);
}

TEST_F(LogTailerTest, TruncationDropsAHeldPartialLine) {
  LogTailer t(kPath, fs_, FromStart());
  fs_.Append(kPath, "1\npart");
  EXPECT_EQ(Read(t), Lines{"1"});
  fs_.Truncate(kPath);
  fs_.Append(kPath, "2\n");
  EXPECT_EQ(Read(t), Lines{"2"});
}

TEST_F(LogTailerTest, BoundsTheBytesReadPerCall) {
  LogTailer::Options o = FromStart();
  o.max_read_per_call = 10;
  LogTailer t(kPath, fs_, o);
  fs_.Append(kPath, "aaaa\nbbbb\ncccc\ndddd\n");  // 20 bytes
  EXPECT_EQ(Read(t), (Lines{"aaaa", "bbbb"}));
  EXPECT_EQ(Read(t), (Lines{"cccc", "dddd"}));
  EXPECT_EQ(Read(t), Lines{});
}

TEST_F(LogTailerTest, BoundedReadsAcrossARotation) {
  LogTailer::Options o = FromStart();
  o.max_read_per_call = 4;
  LogTailer t(kPath, fs_, o);
  fs_.Create(kPath);
  EXPECT_EQ(Read(t), Lines{});
  fs_.Append(kPath, "a\nb\nc\n");
  fs_.Rename(kPath, kPath + ".1");
  fs_.Append(kPath, "d\ne\n");
  Lines all;
  for (int i = 0; i < 6; ++i) {
    for (auto& l : Read(t)) all.push_back(l);
  }
  EXPECT_EQ(all, (Lines{"a", "b", "c", "d", "e"}));
}

TEST_F(LogTailerTest, DropsOverlongLines) {
  LogTailer::Options o = FromStart();
  o.max_line = 8;
  LogTailer t(kPath, fs_, o);
  fs_.Append(kPath, "short\n0123456789abc\nok\n");
  EXPECT_EQ(Read(t), (Lines{"short", "ok"}));
  fs_.Append(kPath, "0123456");
  Read(t);
  fs_.Append(kPath, "789\nafter\n");
  EXPECT_EQ(Read(t), Lines{"after"});
  EXPECT_EQ(t.DroppedLines(), 2u);
}

TEST_F(LogTailerTest, RealFileSystemFollowsAFile) {
  char dir[] = "/tmp/log_tailer_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/access.log";
  RealFileSystem real;
  LogTailer t(path, real, FromStart());
  EXPECT_EQ(Read(t), Lines{});
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("a\nb", f);
  fflush(f);
  EXPECT_EQ(Read(t), Lines{"a"});
  fputs("\n", f);
  fclose(f);
  EXPECT_EQ(Read(t), Lines{"b"});
  ASSERT_EQ(rename(path.c_str(), (path + ".1").c_str()), 0);
  f = fopen(path.c_str(), "w");
  fputs("c\n", f);
  fclose(f);
  EXPECT_EQ(Read(t), Lines{"c"});
  unlink(path.c_str());
  unlink((path + ".1").c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace reactor
