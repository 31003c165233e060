// A Store that forwards to a real one and injects faults on request (the
// idea of leveldb's EnvWrapper): every call can fail with Unavailable (at
// once, after a number of calls that still succeed, or only the n-th one),
// be delayed, or hang
// until the test releases it; a hook can run just before a Commit reaches
// the real store (to make a concurrent writer win a race at exactly that
// point).
//
// Thread-safe. A test that hangs calls must Release() them before the
// FaultyStore (or the store below it) goes away.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "agent/store/store.h"

namespace reactor {

class FaultyStore : public Store {
 public:
  explicit FaultyStore(Store& base) : base_(base) {}

  /// While set, every call fails with Unavailable (as an unreachable etcd).
  std::atomic<bool> unavailable{false};
  /// Calls made (any method), to assert on round trips.
  std::atomic<int> calls{0};
  /// Real time every call waits before it is forwarded (a slow store).
  std::atomic<int64_t> delay_ms{0};

  /// The next `n` calls succeed, every one after them fails with
  /// Unavailable (the store goes away in the middle of a round) until
  /// ClearFailAfter. n = 0 fails the next call.
  void FailAfter(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_after_ = n;
  }
  void ClearFailAfter() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_after_ = -1;
    fail_only_ = -1;
  }
  /// Only the call after the next `n` fails with Unavailable (a blip: one
  /// request lost), the others succeed. n = 0 fails the next call.
  void FailOnly(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_only_ = n;
  }

  /// From now on every call blocks (as a store that accepted the
  /// connection and never answers) until Release().
  void Hang() {
    std::lock_guard<std::mutex> lock(mu_);
    hang_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hang_ = false;
    cv_.notify_all();
  }
  /// Waits (real time, at most `bound`) until a call is blocked by Hang.
  bool WaitUntilHung(std::chrono::milliseconds bound) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, bound, [this] { return hung_ > 0; });
  }

  /// Runs once, before the next Commit is forwarded.
  void BeforeNextCommit(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    before_commit_ = std::move(hook);
  }

  Result<int64_t> Revision() override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.Revision();
  }
  Result<std::optional<KeyValue>> Get(const std::string& key) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.Get(key);
  }
  Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.GetPrefix(prefix, revision);
  }
  Result<TxnResult> Commit(const Txn& txn) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hook.swap(before_commit_);
    }
    if (hook) hook();
    return base_.Commit(txn);
  }
  Result<LeaseId> GrantLease(Duration ttl) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.GrantLease(ttl);
  }
  Status KeepAlive(LeaseId lease) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.KeepAlive(lease);
  }
  Status RevokeLease(LeaseId lease) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.RevokeLease(lease);
  }
  Result<WatchResult> Watch(const std::string& prefix, int64_t after_revision, Duration timeout) override {
    REACTOR_RETURN_IF_ERROR(Enter());
    return base_.Watch(prefix, after_revision, timeout);
  }
  Store& Backend() override { return base_.Backend(); }

 private:
  Status Enter() {
    calls++;
    if (int64_t ms = delay_ms; ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (hang_) {
        hung_++;
        cv_.notify_all();
        cv_.wait(lock, [this] { return !hang_; });
        hung_--;
      }
      if (fail_after_ == 0) return Status::Unavailable("injected: store went away");
      if (fail_after_ > 0) fail_after_--;
      if (fail_only_ == 0) {
        fail_only_ = -1;
        return Status::Unavailable("injected: one request lost");
      }
      if (fail_only_ > 0) fail_only_--;
    }
    if (unavailable) return Status::Unavailable("injected: store unreachable");
    return Status::Ok();
  }

  Store& base_;
  // State below is protected by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> before_commit_;
  int fail_after_ = -1;  // calls left before every call fails; -1 = off
  int fail_only_ = -1;   // calls left before the one that fails; -1 = off
  bool hang_ = false;
  int hung_ = 0;  // calls blocked by hang_
};

}  // namespace reactor
