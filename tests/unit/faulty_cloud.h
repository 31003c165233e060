// A Cloud that forwards to another one and injects faults on request
// (leveldb's EnvWrapper idea, like faulty_store.h): Launch, Stop, List and
// Inspect can fail with a given Status, be delayed, or hang until the test
// releases them (as a dockerd that accepts the connection and never
// answers).
//
// Thread-safe. A test that hangs calls must Release() them before the
// wrapper (or the cloud below it) goes away.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/cloud/cloud.h"

namespace reactor {

class FaultyCloud : public Cloud {
 public:
  enum class Call { kLaunch, kStop, kList, kInspect };

  explicit FaultyCloud(Cloud& base) : base_(base) {}

  /// `call` fails with `error` (without reaching the cloud below).
  void Fail(Call call, Status error) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_[call].error = std::move(error);
  }
  /// `call` waits this long (real time) before it is forwarded.
  void Delay(Call call, std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_[call].delay = d;
  }
  /// `call` blocks until Release.
  void Hang(Call call) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_[call].hang = true;
  }
  /// Lets every hung call go; clears every fault.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.clear();
    cv_.notify_all();
  }
  /// Waits (real time, at most `bound`) until a call is blocked by Hang.
  bool WaitUntilHung(std::chrono::milliseconds bound) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, bound, [this] { return hung_ > 0; });
  }
  int Calls(Call call) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[call];
  }

  const char* Name() const override { return base_.Name(); }
  Result<InstanceInfo> Launch(const LaunchRequest& req) override {
    if (auto e = Enter(Call::kLaunch)) return *e;
    return base_.Launch(req);
  }
  Status Stop(const std::string& instance_id, Duration grace) override {
    if (auto e = Enter(Call::kStop)) return *e;
    return base_.Stop(instance_id, grace);
  }
  Result<std::vector<InstanceInfo>> List(const std::string& manager) override {
    if (auto e = Enter(Call::kList)) return *e;
    return base_.List(manager);
  }
  Result<InstanceInfo> Inspect(const std::string& instance_id) override {
    if (auto e = Enter(Call::kInspect)) return *e;
    return base_.Inspect(instance_id);
  }

 private:
  struct Fault {
    std::optional<Status> error;
    std::chrono::milliseconds delay{0};
    bool hang = false;
  };

  // Counts the call, then delays, hangs or fails it as injected.
  std::optional<Status> Enter(Call call) {
    std::unique_lock<std::mutex> lock(mu_);
    calls_[call]++;
    std::chrono::milliseconds delay = faults_[call].delay;
    if (delay.count() > 0) {
      lock.unlock();
      std::this_thread::sleep_for(delay);
      lock.lock();
    }
    if (faults_[call].hang) {
      hung_++;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !faults_[call].hang; });
      hung_--;
    }
    return faults_[call].error;
  }

  Cloud& base_;
  // State below is protected by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Call, Fault> faults_;
  std::map<Call, int> calls_;
  int hung_ = 0;
};

}  // namespace reactor
