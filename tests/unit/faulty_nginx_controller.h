// A NginxController that forwards to another one and injects faults on
// request (leveldb's EnvWrapper idea, like faulty_store.h): each call can
// fail with a given Status, be delayed, or hang until the test releases it.
//
// Thread-safe. A test that hangs calls must Release() them before the
// wrapper (or the controller below it) goes away.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/nginx/nginx_controller.h"

namespace reactor {

class FaultyNginxController : public NginxController {
 public:
  enum class Call { kStart, kApplySites, kSetMembers, kFlush, kUntilFlushDue, kSupervise, kHeldBack, kReloadCount };

  explicit FaultyNginxController(NginxController& base) : base_(base) {}

  /// `call` fails with `error` (without reaching the controller below)
  /// until ClearFaults. Only for calls that return a Status.
  void Fail(Call call, Status error) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_[call].error = std::move(error);
  }
  /// `call` waits this long (real time) before it is forwarded.
  void Delay(Call call, std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_[call].delay = d;
  }
  /// `call` blocks (as a controller stuck on a wedged nginx) until Release.
  void Hang(Call call) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_[call].hang = true;
  }
  /// Lets every hung call go and clears the hangs (errors and delays stay).
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [call, f] : faults_) f.hang = false;
    cv_.notify_all();
  }
  void ClearFaults() {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.clear();
    cv_.notify_all();
  }
  /// Waits (real time, at most `bound`) until a call is blocked by Hang.
  bool WaitUntilHung(std::chrono::milliseconds bound) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, bound, [this] { return hung_ > 0; });
  }
  /// Calls made of one kind (faulty or not).
  int Calls(Call call) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[call];
  }

  Status Start() override {
    if (auto e = Enter(Call::kStart)) return *e;
    return base_.Start();
  }
  Status ApplySites(const std::vector<EndpointConfig>& endpoints) override {
    if (auto e = Enter(Call::kApplySites)) return *e;
    return base_.ApplySites(endpoints);
  }
  Status SetMembers(const std::string& endpoint, const std::vector<Member>& members) override {
    if (auto e = Enter(Call::kSetMembers)) return *e;
    return base_.SetMembers(endpoint, members);
  }
  Status Flush() override {
    if (auto e = Enter(Call::kFlush)) return *e;
    return base_.Flush();
  }
  std::optional<Duration> UntilFlushDue() const override {
    (void)Enter(Call::kUntilFlushDue);
    return base_.UntilFlushDue();
  }
  Status Supervise() override {
    if (auto e = Enter(Call::kSupervise)) return *e;
    return base_.Supervise();
  }
  void Detach() override { base_.Detach(); }
  std::string AccessLogPath() const override { return base_.AccessLogPath(); }
  int ReloadCount() const override {
    (void)Enter(Call::kReloadCount);
    return base_.ReloadCount();
  }
  std::map<std::string, std::string> HeldBack() const override {
    (void)Enter(Call::kHeldBack);
    return base_.HeldBack();
  }

 private:
  struct Fault {
    std::optional<Status> error;
    std::chrono::milliseconds delay{0};
    bool hang = false;
  };

  // Counts the call, then delays, hangs or fails it as injected.
  std::optional<Status> Enter(Call call) const {
    std::unique_lock<std::mutex> lock(mu_);
    calls_[call]++;
    Fault f = faults_[call];
    if (f.delay.count() > 0) {
      lock.unlock();
      std::this_thread::sleep_for(f.delay);
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

  NginxController& base_;
  // State below is protected by mu_ (mutable: const calls count and hang too).
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::map<Call, Fault> faults_;
  mutable std::map<Call, int> calls_;
  mutable int hung_ = 0;
};

}  // namespace reactor
