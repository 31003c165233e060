// The clock of `reactor simulate`: time moves only when the simulation says
// so, one decision round at a time. Not thread-safe (one simulation, one thread).
#pragma once

#include "agent/common/clock.h"

namespace reactor {

class SimulatedClock : public Clock {
 public:
  /// Starts at `start` (monotonic) and `wall_start_ms` (wall clock).
  explicit SimulatedClock(TimePoint start = TimePoint(Duration(0)), int64_t wall_start_ms = 0)
      : start_(start), now_(start), wall_start_ms_(wall_start_ms) {}
  TimePoint Now() const override { return now_; }
  int64_t WallMillis() const override { return wall_start_ms_ + (now_ - start_).count(); }
  void Advance(Duration d) { now_ += d; }
  void Set(TimePoint t) { now_ = t; }

 private:
  TimePoint start_;
  TimePoint now_;
  int64_t wall_start_ms_;
};

}  // namespace reactor
