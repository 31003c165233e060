// The per-endpoint event log (`reactor log NAME`), kept in the Store under
// EventPrefix(endpoint). Every state change, launch, removal, reload and
// scaling decision is recorded here with its reason, and mirrored to the
// agent's own log (spdlog).
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/event_sink.h"
#include "agent/store/store.h"

namespace reactor {

struct Event {
  uint64_t seq = 0;     // increasing; pass as `after` to read on
  int64_t time_ms = 0;  // wall clock, ms since the epoch
  std::string kind;
  std::string message;
};

/// Decodes one stored event (a key under EventPrefix and its JSON value).
Event DecodeEvent(const KeyValue& kv);

class EventLog : public EventSink {
 public:
  /// `retain` events are kept per endpoint; older ones are trimmed by Trim().
  EventLog(Store& store, Clock& clock, size_t retain = 1000);

  /// Thread-safe. Agent-wide events (empty endpoint) go to the "_agent" log.
  void Record(const std::string& endpoint, const std::string& kind, const std::string& message) override;

  /// Events with seq > after, oldest first, at most `limit`.
  Result<std::vector<Event>> Read(const std::string& endpoint, uint64_t after, size_t limit = 1000);
  /// Like Read, but waits up to `wait` for a first event to arrive.
  Result<std::vector<Event>> Follow(const std::string& endpoint, uint64_t after, Duration wait);
  /// Drops events beyond the retention limit. Called from the agent loop;
  /// reads the log only when it may have grown past the limit.
  Status Trim(const std::string& endpoint);
  /// Deletes an endpoint's whole log (after unmanage).
  Status Remove(const std::string& endpoint);

 private:
  uint64_t NextSeq(const std::string& log, int64_t now_ms);

  Store& store_;
  Clock& clock_;
  const size_t retain_;

  // State below is protected by mu_.
  std::mutex mu_;
  std::map<std::string, uint64_t> newest_;    // log → newest sequence number used or seen
  std::map<std::string, size_t> since_trim_;  // log → events recorded since its last Trim read
  std::set<std::string> trimmed_;             // logs read by Trim at least once
};

}  // namespace reactor
