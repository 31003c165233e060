// A clock that moves only when a test says so.
#pragma once

#include "agent/common/clock.h"

namespace reactor {

class FakeClock : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  int64_t WallMillis() const override { return 1700000000000 + now_.time_since_epoch().count(); }
  void Advance(Duration d) { now_ += d; }

 private:
  TimePoint now_{Duration(1000000)};
};

}  // namespace reactor
