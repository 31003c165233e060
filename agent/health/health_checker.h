// Active health checks of every instance of every endpoint, on one thread,
// with libcurl's multi interface: HTTP GET of the endpoint's `[health] path`
// (2xx/3xx = healthy) or a TCP connect when the path is empty, each with its
// own timeout, every `interval` with ±10% jitter, through a HealthThreshold.
#pragma once

#include <condition_variable>
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
  // One pass: start due checks, drive transfers for up to `wait`, collect results.
  void Step(Duration wait);
  void StartCheck(Check& c);
  void Finish(Check& c, bool ok, const std::string& result);

  Clock& clock_;
  void* multi_ = nullptr;  // CURLM*, used only by the checking thread (or RunRound)

  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, std::unique_ptr<Check>> checks_;
  bool stop_ = false;
  bool transition_pending_ = false;
  std::function<void()> on_transition_;

  std::thread thread_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;  // jitter; only the checking thread
};

}  // namespace reactor
