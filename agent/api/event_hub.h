// The live side of the event log: one thread watches every endpoint's event
// log in the Store (one Watch, whoever recorded the event: this agent or
// another host of the cluster) and keeps the newest events in a ring that
// any number of readers wait on. `reactor log --follow` and the dashboard
// read it through the event stream (stream_routes.h), so N followers cost one
// store watch, not N.
//
// Readers hold a cursor (a position in the ring, not an event seq): take
// Cursor() before reading the store's history, then Next(cursor) returns
// what arrived after; an event can be seen twice (in history and in the
// ring) but never lost, so readers skip seqs they have already sent. When a
// reader falls further behind than the ring holds, or the store's history
// was compacted, Next says `gap`: re-read the history from the store.
//
// Thread-safety: every method is thread-safe. Start/Stop are called once
// each, by the owner.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/events/event_log.h"
#include "agent/store/store.h"

namespace reactor {

struct HubEvent {
  std::string log;  // the endpoint's name, or "_agent" for the agent-wide log
  Event event;
};

class EventHub {
 public:
  /// `store` must outlive the hub. The ring keeps the newest `capacity` events.
  explicit EventHub(Store& store, size_t capacity = 4096);
  ~EventHub();

  /// Starts the watching thread. Error when the store cannot be read.
  Status Start();
  /// Stops the thread and wakes every reader (Next then returns stopped).
  void Stop();

  /// The position after the newest event in the ring.
  uint64_t Cursor() const;

  struct Batch {
    std::vector<HubEvent> events;  // oldest first
    uint64_t cursor = 0;           // pass to the next Next
    bool gap = false;              // events were missed: re-read history
    bool stopped = false;          // the hub is stopping: end the stream
  };
  /// Events after `cursor`, waiting up to `wait` for the first one (returns
  /// an empty batch on timeout).
  Batch Next(uint64_t cursor, Duration wait) const;

 private:
  void Run(int64_t revision);
  void Append(std::vector<HubEvent> events, bool gap);

  Store& store_;
  const size_t capacity_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  // State below is protected by mu_.
  std::deque<HubEvent> ring_;
  uint64_t end_ = 0;         // cursor after ring_.back()
  uint64_t gap_before_ = 0;  // a reader whose cursor is below this missed events
  bool stop_ = false;

  std::thread thread_;
};

/// A counting limit on open streams. Thread-safe.
class StreamSlots {
 public:
  explicit StreamSlots(int cap) : cap_(cap) {}
  /// True (and one slot taken) if fewer than cap() are open.
  bool TryAcquire();
  void Release();
  int InUse() const;
  int cap() const { return cap_; }

 private:
  const int cap_;
  mutable std::mutex mu_;
  int in_use_ = 0;  // protected by mu_
};

}  // namespace reactor
