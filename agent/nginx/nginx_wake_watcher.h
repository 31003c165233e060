// Scale to zero: the agent's ear on its nginx. A thread keeps a long poll
// (GET /wakes) open on nginx's control socket; the lua router answers it the
// moment an endpoint starts holding requests, once per endpoint per hold
// (and again when a burst doubles the count). While holds are open the
// thread also reads their counts (GET /holds) every `open_poll`, so the
// agent knows when a hold grows and when it is over. nginx never waits on
// the agent: a wake is a shared-dict write in nginx, and the agent is the
// one that asks.
//
// Thread model: Start() runs the thread (named "reactor-wakes"); the
// callback runs on it. Report() may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/nginx/nginx_holds.h"

namespace reactor {

class NginxWakeWatcher {
 public:
  struct Options {
    std::string control_socket;
    Duration idle_wait{10000};  // long-poll wait with no hold open
    Duration open_poll{250};    // with holds open: how often counts are read
    Duration retry{500};        // after nginx did not answer
  };
  /// `changed`: endpoints whose held count changed since the last call
  /// (held 0: the hold is over). `open`: some hold is still open. Called
  /// after every poll that changed something or while a hold is open.
  using OnHolds = std::function<void(const std::vector<HeldRequests>& changed, bool open)>;

  NginxWakeWatcher(Options options, OnHolds on_holds);
  /// Stops the thread (within about a second).
  ~NginxWakeWatcher();
  NginxWakeWatcher(const NginxWakeWatcher&) = delete;
  NginxWakeWatcher& operator=(const NginxWakeWatcher&) = delete;

  void Start();
  void Stop();

  /// nginx's hold statistics now (GET /holds, at most 250 ms). Thread-safe.
  Result<HoldReport> Report() const;

 private:
  void Loop();
  /// One long poll and what follows it; false when nginx did not answer.
  bool PollOnce();

  // Constant after construction.
  const Options options_;
  const OnHolds on_holds_;

  // Loop-thread state.
  bool synced_ = false;
  uint64_t seq_ = 0;
  std::map<std::string, HeldRequests> open_;  // endpoints holding requests, as last reported

  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;  // with mu_: Stop() interrupts the retry wait
  std::thread thread_;
};

}  // namespace reactor
