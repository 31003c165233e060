// One long-lived etcd watch of a key prefix: a streaming POST /v3/watch on a
// thread of its own, whose events are buffered until Store::Watch asks for
// them. The stream is reused across the loop's rounds (not a poll); when it
// breaks (member gone, member without a leader, the gateway ends it) it is
// opened again on the next member from the revision after the last event it
// delivered, so nothing is lost or repeated. It never moves its start
// forward because a wait timed out.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/store/etcd_codec.h"
#include "agent/store/etcd_connection.h"
#include "agent/store/store.h"

namespace reactor {

/// The events of one prefix that a stream has delivered: everything with a
/// revision in (base, last]. Pure state, not thread-safe.
class EtcdWatchBuffer {
 public:
  explicit EtcdWatchBuffer(int64_t after_revision) : base_(after_revision), last_(after_revision) {}

  /// What to do next with the stream, after Feed.
  enum class Next { kContinue, kReconnect, kCompacted };
  /// Applies one line of the stream. kReconnect: the server canceled or
  /// failed the watch for a reason other than compaction (`why` says which).
  Next Feed(const etcd::WatchMessage& m, std::string* why);

  /// True iff every event after `after_revision` is (or will be) here.
  bool Covers(int64_t after_revision) const { return after_revision >= base_; }
  /// The events after `after_revision` (REQUIRES Covers(after_revision));
  /// drops those at or before it, which no caller will ask for again.
  std::vector<WatchEvent> Take(int64_t after_revision);
  /// Where a reopened stream resumes: after this revision.
  int64_t last_revision() const { return last_; }
  bool compacted() const { return compact_revision_ > 0; }
  int64_t compact_revision() const { return compact_revision_; }
  size_t size() const { return events_.size(); }

 private:
  int64_t base_;  // all events after base_ ...
  int64_t last_;  // ... up to last_ are in events_
  int64_t compact_revision_ = 0;
  std::deque<WatchEvent> events_;
};

class EtcdWatchStream {
 public:
  /// Starts watching `prefix` after `after_revision` through `conn`, which
  /// must outlive the stream.
  EtcdWatchStream(EtcdConnection& conn, std::string prefix, int64_t after_revision);
  /// Stops the stream (within about a second) and joins its thread.
  ~EtcdWatchStream();
  EtcdWatchStream(const EtcdWatchStream&) = delete;
  EtcdWatchStream& operator=(const EtcdWatchStream&) = delete;

  struct Waited {
    std::vector<WatchEvent> events;
    bool compacted = false;
    int64_t compact_revision = 0;
    bool connected = false;  // the watch is established on some member now
    std::string error;       // the last failure, "" if none since the last success
  };
  /// Waits until there are events after `after_revision`, compaction, or
  /// `deadline`. REQUIRES Covers(after_revision).
  Waited Wait(int64_t after_revision, std::chrono::steady_clock::time_point deadline);
  bool Covers(int64_t after_revision);
  /// Asks the stream to stop without waiting (the destructor joins).
  void RequestStop();
  std::chrono::steady_clock::time_point last_used();

 private:
  void Run();

  // Constant after construction.
  EtcdConnection& conn_;
  const std::string prefix_;

  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable changed_;
  EtcdWatchBuffer buffer_;                           // protected by mu_
  bool connected_ = false;                           // protected by mu_
  bool ever_connected_ = false;                      // protected by mu_
  std::string error_;                                // protected by mu_
  std::chrono::steady_clock::time_point last_used_;  // protected by mu_
  std::thread thread_;                               // last: starts after the members above exist
};

}  // namespace reactor
