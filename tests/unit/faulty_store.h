// A Store that forwards to a real one and injects faults on request (the
// idea of leveldb's EnvWrapper): every call can fail with Unavailable, and a
// hook can run just before a Commit reaches the real store (to make a
// concurrent writer win a race at exactly that point).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>

#include "agent/store/store.h"

namespace reactor {

class FaultyStore : public Store {
 public:
  explicit FaultyStore(Store& base) : base_(base) {}

  /// While set, every call fails with Unavailable (as an unreachable etcd).
  std::atomic<bool> unavailable{false};
  /// Calls made (any method), to assert on round trips.
  std::atomic<int> calls{0};

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
    if (unavailable) return Status::Unavailable("injected: store unreachable");
    return Status::Ok();
  }

  Store& base_;
  std::mutex mu_;
  std::function<void()> before_commit_;  // guarded by mu_
};

}  // namespace reactor
