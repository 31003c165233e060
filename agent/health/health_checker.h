// Active health checks of every instance of every endpoint, on one thread:
// a prober on epoll that keeps one persistent HTTP/1.1 connection per
// backend and sends `GET <[health] path>` on it (2xx/3xx = healthy; the
// response parsed by HttpResponseParser, the connection's states in
// ProbeSession), or connects and closes when the path is empty (TCP check),
// each check with its own timeout, every `interval` with ±10% jitter, through
// a HealthThreshold. The prober's sockets are registered in an
// ExcludedSockets (tcp_table.h) so they never count as an instance's
// connections.
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
#include "agent/health/probe_session.h"
#include "agent/metrics/tcp_table.h"

namespace reactor {

struct HealthTarget {
  std::string id;  // instance id, unique across endpoints
  std::string endpoint;
  std::string address;  // host:port
  std::string path;     // empty = TCP connect only
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
  /// `own_sockets` receives the inode of every socket the prober holds open
  /// (the process-wide ProbeSockets() that CountEstablishedTo skips, unless a
  /// test gives its own). Both must outlive the checker.
  explicit HealthChecker(Clock& clock, ExcludedSockets& own_sockets = ProbeSockets());
  ~HealthChecker() override;
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /// Starts the checking thread (named "reactor-health").
  void Start();
  /// Stops it; in-flight checks are abandoned. Idempotent.
  void Stop();

  /// Replaces the set of targets. Targets that remain (same id and address)
  /// keep their state (and their connection); new ones start pending and are
  /// checked at once — many new ones at once are spread out, at most one per
  /// 100 µs and over at most one interval, so that a first round at 10,000
  /// backends is not a burst. Thread-safe.
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
  struct Outcome {
    Check* check;
    bool ok;
    std::string result;
  };
  void Loop();
  // One pass: retire removed checks, start due ones, wait up to `wait` for
  // socket events or the next deadline, and record finished checks.
  void Step(Duration wait);
  // Loop thread only, without mu_: the socket side of a check.
  void Begin(Check& c, const TimePoint now);
  void Carry(Check& c, ProbeSession::Action a);  // does what the session asks, records the outcome
  void OnEvents(Check& c, uint32_t events);
  // 0 connected, EINPROGRESS, the errno of the failure, or -1 when the
  // address cannot be resolved (`unresolved` says why).
  int OpenAndConnect(Check& c, std::string* unresolved);
  int SendRequest(Check& c);  // 0 or the errno of the failure
  void CloseSocket(Check& c, bool reset);
  void Watch(Check& c, uint32_t events);
  void Disarm(Check& c);  // drops c's pending deadline
  void ExpireDeadlines(TimePoint now);
  void Abandon(Check& c);  // closes and forgets a retired check's connection
  void RecordOutcomes();   // takes mu_
  // REQUIRES: mu_ held.
  void Finish(Check& c, bool ok, const std::string& result);
  void Schedule(Check& c, TimePoint due);
  void Unschedule(Check& c);
  void Retire(std::unique_ptr<Check> c);
  void Wake();

  Clock& clock_;
  ExcludedSockets& own_sockets_;

  // Constant after construction.
  int wake_fd_ = -1;   // eventfd: SetTargets and Stop interrupt the wait
  int epoll_fd_ = -1;  // every probe socket, and wake_fd_

  // Used only by the checking thread (or by RunRound, or the destructor
  // after Stop).
  std::multimap<TimePoint, Check*> deadlines_;  // checks in flight, by timeout
  std::vector<Outcome> outcomes_;               // finished this step, recorded under mu_
  size_t open_sockets_ = 0;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;  // jitter

  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, std::unique_ptr<Check>> checks_;
  // Checks that are not in flight, by next due time, so that a step touches
  // only the checks that are due rather than all of them.
  std::multimap<TimePoint, Check*> due_;
  // Checks dropped by SetTargets; the checking thread closes their sockets
  // and frees them.
  std::vector<std::unique_ptr<Check>> retired_;
  size_t in_flight_ = 0;        // checks started and not finished
  size_t round_remaining_ = 0;  // RunRound: targets not yet checked this round
  bool stop_ = false;
  bool transition_pending_ = false;
  std::function<void()> on_transition_;

  std::thread thread_;
};

}  // namespace reactor
