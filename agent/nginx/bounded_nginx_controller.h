// A NginxController decorator that never holds its caller (the agent's loop,
// the route watcher) on a controller that does not answer: what AsyncCloud
// is to dockerd. Every call below runs on the decorator's own thread, one at
// a time; a caller waits for its call's result, but only so long:
//
//   - all callers together wait at most `budget` per `window` of real time
//     (a controller slow on every call costs a round that much, not one
//     wait per endpoint);
//   - nobody waits while the call in flight has run longer than `budget`
//     (a hung controller costs a round nothing after the first wait).
//
// A call not done in time stays queued and is still made: ApplySites and
// SetMembers of one endpoint keep only their newest arguments while queued
// (latest wins), Flush and Supervise are made once however often asked. The
// caller gets Unavailable ("queued"): NginxSync pushes what it could not
// push again next round. A call that fails after its caller stopped waiting
// is logged. HeldBack and ReloadCount answer with what the controller said
// last when it does not answer in time; UntilFlushDue with nullopt (nothing
// can be flushed by a controller that does not answer).
//
// Start, Detach and AccessLogPath are forwarded directly (start-up and
// shutdown, not the loop). Thread-safe. The destructor waits for the call in
// flight (the controller's own timeouts bound it).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/nginx/nginx_controller.h"

namespace reactor {

class BoundedNginxController : public NginxController {
 public:
  struct Options {
    Duration budget{500};   // the most callers wait together per window
    Duration window{1000};  // about the loop's interval
  };
  /// Decorates `base`, which must outlive this object.
  BoundedNginxController(NginxController& base, Options options);
  /// Decorates and owns `base`.
  BoundedNginxController(std::unique_ptr<NginxController> base, Options options);
  explicit BoundedNginxController(std::unique_ptr<NginxController> base)
      : BoundedNginxController(std::move(base), Options()) {}
  ~BoundedNginxController() override;

  Status Start() override { return base_.Start(); }
  Status ApplySites(const std::vector<EndpointConfig>& endpoints) override;
  Status SetMembers(const std::string& endpoint, const std::vector<Member>& members) override;
  Status Flush() override;
  std::optional<Duration> UntilFlushDue() const override;
  Status Supervise() override;
  void Detach() override { base_.Detach(); }
  std::string AccessLogPath() const override { return base_.AccessLogPath(); }
  int ReloadCount() const override;
  std::map<std::string, std::string> HeldBack() const override;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Call {
    std::string key;              // calls with one key coalesce while queued
    std::function<Status()> run;  // replaced by a newer call of the same key
    bool done = false;
    bool abandoned = false;  // its caller stopped waiting
    Status result;
  };

  /// Queues `run` under `key` (or replaces the queued call of that key) and
  /// waits for it as the budget allows. Returns its result, or Unavailable
  /// if it was not done in time. Callable from const methods (mu_ is
  /// mutable: the decorator's bookkeeping is not the controller's state).
  Status Submit(const std::string& key, std::function<Status()> run) const;
  void WorkLoop();

  std::unique_ptr<NginxController> owned_;
  NginxController& base_;
  const Options options_;

  // State below is protected by mu_.
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::deque<std::shared_ptr<Call>> queue_;
  mutable std::optional<SteadyTime> busy_since_;  // the call in flight started
  mutable SteadyTime window_start_{};
  mutable std::chrono::steady_clock::duration waited_{};  // in this window
  bool exit_ = false;
  // What the controller said last (written by the worker's calls).
  mutable std::optional<Duration> until_flush_due_;  // of the last call made
  mutable std::map<std::string, std::string> held_back_;
  mutable int reload_count_ = 0;

  std::thread worker_;  // last: starts once everything above is built
};

}  // namespace reactor
