// Time is passed in: logic takes a Clock, never reads a global one, so unit
// tests can step it (see tests/unit/fake_clock.h).
#pragma once

#include <chrono>
#include <cstdint>

namespace reactor {

using Duration = std::chrono::milliseconds;
/// Milliseconds on a monotonic timeline (steady clock in production).
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic time, for intervals, timeouts and windows.
  virtual TimePoint Now() const = 0;
  /// Wall-clock time in milliseconds since the Unix epoch, for event logs.
  virtual int64_t WallMillis() const = 0;
};

/// The real clocks. Thread-safe.
class SystemClock : public Clock {
 public:
  TimePoint Now() const override;
  int64_t WallMillis() const override;
  /// A process-wide instance.
  static SystemClock& Get();
};

}  // namespace reactor
