// Follows one access-log path the way `tail -F` does, without losing or
// double-counting lines (SPEC §6):
// - tracks the open file's identity (device, inode) and the offset read to;
// - rename rotation (another file appears at the path): reads the old file to
//   its end, then switches to the new one from its start; the old file stays
//   open and is read again on later calls until it has been idle for
//   kRotatedIdleCalls calls, since nginx writes to it until it reopens its logs;
// - truncation (copytruncate, `> file`): the file is shorter than the offset,
//   or its first or last-read bytes changed (it was truncated and has grown
//   past the offset again) → restarts at 0;
// - a partial last line is held until its '\n' arrives;
// - at most `max_read_per_call` bytes per call, so a backlog cannot stall the
//   agent loop; the rest comes on later calls;
// - a missing or unreadable file is reported by Problem() and retried on
//   every call; when it appears it is read from its start.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/metrics/log_file_system.h"

namespace reactor {

class LogTailer {
 public:
  struct Options {
    /// When the file exists at the first call, begin at its end: lines written
    /// before the agent started are not current traffic. A file that appears
    /// later is read from its start either way.
    bool start_at_end = true;
    /// Bytes read per ReadNewLines call, at most.
    size_t max_read_per_call = 4 << 20;
    /// Longer lines are dropped (counted by DroppedLines()).
    size_t max_line = 64 << 10;
  };
  /// A rotated-away file is closed after this many calls that found nothing new in it.
  static constexpr int kRotatedIdleCalls = 5;

  /// `fs` must outlive the tailer.
  LogTailer(std::string path, FileSystem& fs, Options options);
  LogTailer(std::string path, FileSystem& fs) : LogTailer(std::move(path), fs, Options()) {}

  /// Calls `on_line` with every complete line appended since the last call
  /// (without its '\n'; the view is valid only during the call). Returns the
  /// number of lines delivered. Never throws (unless `on_line` does).
  /// Not thread-safe: call from one thread.
  size_t ReadNewLines(const std::function<void(std::string_view)>& on_line);

  /// Why the log cannot be read ("" when it can).
  const std::string& Problem() const { return problem_; }
  const std::string& path() const { return path_; }
  /// Lines longer than max_line, dropped.
  uint64_t DroppedLines() const { return dropped_lines_; }
  uint64_t Rotations() const { return rotations_; }
  uint64_t Truncations() const { return truncations_; }

 private:
  static constexpr size_t kFingerprint = 64;

  // One open file and how far it has been read.
  struct Source {
    std::unique_ptr<OpenFile> file;
    FileInfo info;
    uint64_t offset = 0;
    std::string pending;    // a partial line read so far
    bool skipping = false;  // discarding up to the next '\n' (overlong line, or began mid-line)
    std::string head;       // the file's first bytes (up to kFingerprint), to detect truncation
    std::string tail;       // the bytes just before `offset` (up to kFingerprint)
    int idle_calls = 0;
  };

  bool OpenCurrent(bool at_end);
  /// Reads `src` from its offset towards its end within `*budget`. Returns
  /// false on a read error (problem_ set). `*eof` tells whether the end was reached.
  bool ReadSource(Source& src, size_t* budget, bool* eof, size_t* lines,
                  const std::function<void(std::string_view)>& on_line);
  bool CheckTruncated(Source& src, uint64_t size);
  void Deliver(Source& src, const char* data, size_t n, size_t* lines,
               const std::function<void(std::string_view)>& on_line);

  const std::string path_;
  FileSystem& fs_;
  const Options options_;

  Source current_;                   // current_.file null: the path is not open
  std::unique_ptr<Source> rotated_;  // the file rotated away, still being drained
  bool first_call_ = true;
  std::vector<char> buffer_;
  std::string problem_;
  uint64_t dropped_lines_ = 0;
  uint64_t rotations_ = 0;
  uint64_t truncations_ = 0;
};

}  // namespace reactor
