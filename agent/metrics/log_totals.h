// Per-endpoint, per-backend totals of whole access-log files: what
// `reactor metrics parse FILE...` prints (SPEC §6). Built for speed: files are
// read in 1 MiB blocks, lines found with memchr, parsed by ParseLogLine, and
// summed in an open-addressing table keyed by (endpoint, backend) that
// allocates only when a new pair first appears.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/common/status.h"
#include "agent/metrics/access_log_parser.h"

namespace reactor {

struct BackendTotals {
  uint64_t hits = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  double response_sum = 0;
};

class LogTotals {
 public:
  LogTotals();

  /// Attributes one record (see access_log_parser.h for the rules).
  void Add(const LogRecord& r);
  /// Parses and adds one line; counts it as unparsed when ParseLogLine fails.
  void AddLine(std::string_view line);
  /// Reads the file at `path` to its end, line by line. A last line without
  /// '\n' counts. IOError naming the path if it cannot be read.
  Status AddFile(const std::string& path);

  /// Lines ParseLogLine rejected (malformed or foreign).
  uint64_t unparsed() const { return unparsed_; }
  uint64_t lines() const { return lines_; }

  /// {"ENDPOINT":{"BACKEND":{"hits":N,"bytes":N,"errors":N,"response_sum":S}}},
  /// keys sorted. Endpoints whose requests never reached a backend are absent.
  std::string ToJson() const;

  /// Visits every (endpoint, backend) pair, in no particular order.
  template <typename F>
  void ForEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.used) f(std::string_view(s.key).substr(0, s.split), std::string_view(s.key).substr(s.split + 1), s.totals);
    }
  }

 private:
  struct Slot {
    bool used = false;
    uint64_t hash = 0;
    std::string key;   // endpoint + '\0' + backend
    size_t split = 0;  // position of the '\0'
    BackendTotals totals;
  };
  BackendTotals& Find(std::string_view endpoint, std::string_view backend);
  void Grow();

  std::vector<Slot> slots_;  // size is a power of two
  LogRecord scratch_;        // reused: constructing one per line costs
  size_t used_ = 0;
  uint64_t unparsed_ = 0;
  uint64_t lines_ = 0;
};

}  // namespace reactor
