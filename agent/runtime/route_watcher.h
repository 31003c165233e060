// Applies endpoint route changes to nginx the moment their records change,
// without waiting for the loop's next round (SPEC §7, zero-reload routing):
// a watch on the endpoint records, each changed record (as the watch carries it) handed to
// the NginxSync's site book, which pushes it to nginx's routes (a reload
// only for a new listen port, once reload_delay has passed). Members, and
// everything else, stay with the round.
//
// Thread model: one thread of its own, between Start and Stop (or the
// destructor). A store error waits half a second and watches again; a
// compacted watch starts again from the current revision (the next round
// reads every record anyway).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "agent/endpoint/endpoint_registry.h"
#include "agent/nginx/nginx_controller.h"
#include "agent/runtime/nginx_sync.h"
#include "agent/store/store.h"

namespace reactor {

class RouteWatcher {
 public:
  /// Every reference must outlive the watcher.
  RouteWatcher(Store& store, NginxSync& sync, NginxController& nginx)
      : store_(store), registry_(store, nullptr), sync_(sync), nginx_(nginx) {}
  ~RouteWatcher() { Stop(); }
  RouteWatcher(const RouteWatcher&) = delete;
  RouteWatcher& operator=(const RouteWatcher&) = delete;

  /// Watches from the store's current revision (what is older, the first
  /// round applies).
  void Start();
  void Stop();

  /// One watch and what it brought (the thread's body; for tests).
  /// Waits at most `timeout`. False when the store did not answer.
  bool Step(Duration timeout);

 private:
  Store& store_;
  EndpointRegistry registry_;
  NginxSync& sync_;
  NginxController& nginx_;
  int64_t revision_ = -1;  // watch after this; -1: read the current one first
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace reactor
