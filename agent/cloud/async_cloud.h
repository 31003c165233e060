// A Cloud decorator that never blocks its caller on the driver: Launch and
// List return at once, the real calls run on the decorator's own threads.
// For drivers that talk to a daemon that may hang (dockerd): the agent's
// loop must finish its round within its interval whatever the daemon does.
//
//   Launch(req)  → {pending, "launching"} at once; a worker makes the real
//                  call. Until a listing taken after the call finished shows
//                  the instance, List reports it as pending (or, if the call
//                  failed, as exited with "launch failed: why").
//   List(m)      → the newest listing a poller thread took (it re-lists every
//                  `poll_interval`), merged with the launches above; the
//                  poller's error if its last listing failed, Unavailable
//                  before the first one.
//   Stop, Inspect→ forwarded (the reconciler already stops on a worker).
//
// Thread-safe. REQUIRES: `manager` is the same on every List call.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/cloud/cloud.h"

namespace reactor {

class AsyncCloud : public Cloud {
 public:
  /// `base` must outlive this object. Threads start at once and stop in the
  /// destructor (an in-flight driver call finishes first: its own timeout
  /// bounds that).
  AsyncCloud(Cloud& base, std::string manager, Clock& clock, Duration poll_interval = Duration(250));
  ~AsyncCloud() override;

  const char* Name() const override { return base_.Name(); }
  Result<InstanceInfo> Launch(const LaunchRequest& req) override;
  Status Stop(const std::string& instance_id, Duration grace) override;
  Result<std::vector<InstanceInfo>> List(const std::string& manager) override;
  Result<InstanceInfo> Inspect(const std::string& instance_id) override;

 private:
  struct PendingLaunch {
    std::string instance_id;
    std::string manager;
    EndpointConfig endpoint;  // a copy: the caller's may change meanwhile
    bool done = false;
    uint64_t done_at_listing = 0;  // listing generation running when it finished
    std::optional<Result<InstanceInfo>> result;
    TimePoint finished{};
  };

  void PollLoop();
  void LaunchLoop();

  Cloud& base_;
  const std::string manager_;
  Clock& clock_;
  const Duration poll_interval_;

  // State below is protected by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  bool exit_ = false;
  bool asked_ = false;      // List was called at least once
  TimePoint last_asked_{};  // the last List call
  std::optional<Result<std::vector<InstanceInfo>>> listing_;
  uint64_t listing_generation_ = 0;                                 // listings completed
  std::map<std::string, std::unique_ptr<PendingLaunch>> launches_;  // by instance id
  std::deque<PendingLaunch*> queue_;

  std::thread poll_thread_;
  std::thread launch_thread_;
};

}  // namespace reactor
