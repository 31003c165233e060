// Active health checks of every instance of every endpoint, on one thread,
// with libcurl's multi interface: HTTP GET of the endpoint's `[health] path`
// (2xx/3xx = healthy) or a TCP connect when the path is empty, each with its
// own timeout, every `interval` with ±10% jitter, through a HealthThreshold.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/common/clock.h"
#include "agent/health/health_threshold.h"

namespace reactor {

struct HealthTarget {
  std::string id;        // instance id, unique across endpoints
  std::string endpoint;
  std::string address;   // host:port
  std::string path;      // empty = TCP connect only
  Duration interval{1000};
  Duration timeout{1000};
  int rise = 1;
  int fall = 3;
  /// Start healthy rather than pending (an instance already in service).
  bool initially_healthy = false;
};

struct HealthReport {
  HealthState state = HealthState::kPending;
  int consecutive_successes = 0;
  int consecutive_failures = 0;
  uint64_t checks = 0;
  std::string last_result;  // "HTTP 200", "timeout after 1000ms", "connection refused"
  /// Increases each time the state flips; lets a reader notice flips it missed.
  uint64_t transitions = 0;
};

/// What the reconciler needs of health checking (a fake in unit tests).
class HealthSource {
 public:
  virtual ~HealthSource() = default;
  /// Replaces the set of targets; targets that remain keep their state.
  virtual void SetTargets(const std::vector<HealthTarget>& targets) = 0;
  /// The current report of every target.
  virtual std::map<std::string, HealthReport> Snapshot() const = 0;
};

class HealthChecker : public HealthSource {
 public:
  explicit HealthChecker(Clock& clock);
  ~HealthChecker() override;
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /// Starts the checking thread.
  void Start();
  /// Stops it; in-flight checks are abandoned. Idempotent.
  void Stop();

  /// Replaces the set of targets. Targets that remain (same id and address)
  /// keep their state; new ones start pending and are checked at once.
  /// Thread-safe.
  void SetTargets(const std::vector<HealthTarget>& targets) override;
  /// The current report of every target. Thread-safe.
  std::map<std::string, HealthReport> Snapshot() const override;

  /// Called on the checking thread (without locks held) after a round in
  /// which some target changed state, so the agent can act at once.
  void SetOnTransition(std::function<void()> callback);

  /// Runs checks until every target has been checked once (or `limit`
  /// passes). For tests and for one-shot use without Start(). REQUIRES: not started.
  void RunRound(Duration limit);

 private:
  struct Check;
  void Loop();
  // One pass: retire removed checks, start due ones, wait up to `wait` for
  // socket events or curl's timer, and record finished checks.
  void Step(Duration wait);
  void StartCheck(Check& c);                  // REQUIRES: mu_ held, loop thread
  void ReleaseHandle(Check& c);               // detaches and pools c's easy handle; loop thread
  void Finish(Check& c, bool ok, const std::string& result);  // REQUIRES: mu_ held
  void Schedule(Check& c, TimePoint due);     // REQUIRES: mu_ held
  void Unschedule(Check& c);                  // REQUIRES: mu_ held
  void Retire(std::unique_ptr<Check> c);      // REQUIRES: mu_ held
  void Wake();
  // What curl's CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION ask for.
  void WatchSocket(int fd, int what, bool known);
  void SetCurlTimer(long timeout_ms);
  // Runs curl's timeouts if its timer has expired.
  void DriveTimer();
  void CollectFinished();

  Clock& clock_;

  // Used only by the checking thread (or by RunRound, or the destructor
  // after Stop): libcurl handles are not thread-safe, so no other thread
  // touches multi_ or an easy handle.
  void* multi_ = nullptr;  // CURLM*
  int epoll_fd_ = -1;      // the sockets curl asks us to watch, and wake_fd_
  bool curl_timer_set_ = false;
  std::chrono::steady_clock::time_point curl_deadline_{};
  std::vector<void*> idle_easy_;  // CURL* handles for the next checks
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;  // jitter

  // Constant after construction.
  int wake_fd_ = -1;  // eventfd: SetTargets and Stop interrupt the wait

  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, std::unique_ptr<Check>> checks_;
  // Checks that are not in flight, by next due time, so that a step touches
  // only the checks that are due rather than all of them.
  std::multimap<TimePoint, Check*> due_;
  // Checks dropped by SetTargets; the checking thread detaches their easy
  // handles from multi_ and frees them.
  std::vector<std::unique_ptr<Check>> retired_;
  size_t in_flight_ = 0;        // checks attached to multi_
  size_t round_remaining_ = 0;  // RunRound: targets not yet checked this round
  bool stop_ = false;
  bool transition_pending_ = false;
  std::function<void()> on_transition_;

  std::thread thread_;
};

}  // namespace reactor
