#include "agent/common/clock.h"

namespace reactor {

TimePoint SystemClock::Now() const { return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now()); }

int64_t SystemClock::WallMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

}  // namespace reactor
