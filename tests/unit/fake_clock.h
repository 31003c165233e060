// A clock that moves only when a test says so.
#pragma once

#include "agent/common/clock.h"

namespace reactor {

class FakeClock : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  int64_t WallMillis() const override { return 1700000000000 + wall_step_ms_ + now_.time_since_epoch().count(); }
  void Advance(Duration d) { now_ += d; }
  /// Steps the wall clock alone (as NTP or an operator might), e.g. back.
  void StepWall(int64_t ms) { wall_step_ms_ += ms; }

 private:
  TimePoint now_{Duration(1000000)};
  int64_t wall_step_ms_ = 0;
};

}  // namespace reactor
