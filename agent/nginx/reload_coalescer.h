// Coalesces structural changes into one nginx reload (SPEC.md §7): the first
// change marks the work pending; it is due once `delay` has passed since then,
// however many changes follow.
#pragma once

#include "agent/common/clock.h"

namespace reactor {

/// Not thread-safe; the owner serialises calls.
class ReloadCoalescer {
 public:
  /// `clock` must outlive the coalescer.
  ReloadCoalescer(const Clock& clock, Duration delay) : clock_(clock), delay_(delay) {}

  /// Records a change; keeps the time of the first one while pending.
  void MarkPending() {
    if (!pending_) since_ = clock_.Now();
    pending_ = true;
  }
  bool pending() const { return pending_; }
  /// True iff pending and `delay` has passed since the first change.
  bool Due() const { return pending_ && clock_.Now() - since_ >= delay_; }
  /// REQUIRES: pending(). How long until Due() (zero once it is).
  Duration UntilDue() const {
    Duration left = delay_ - std::chrono::duration_cast<Duration>(clock_.Now() - since_);
    return left.count() > 0 ? left : Duration(0);
  }
  /// Forgets the pending change (it was applied, or turned out to be a no-op).
  void Clear() { pending_ = false; }

 private:
  const Clock& clock_;
  const Duration delay_;
  bool pending_ = false;
  TimePoint since_{};
};

}  // namespace reactor
