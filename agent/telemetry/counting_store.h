// A Store that forwards every call to another and counts the failed ones in
// reactor_store_errors_total (counter_registry.h); an Unavailable one says
// "store unavailable: ...". A watch or read that times out is not a failure.
// Thread-safe as the wrapped store.
#pragma once

#include <memory>

#include "agent/store/store.h"
#include "agent/telemetry/counter_registry.h"

namespace reactor {

class CountingStore : public Store {
 public:
  CountingStore(std::unique_ptr<Store> inner, CounterRegistry& counters)
      : inner_(std::move(inner)), counters_(counters) {}

  Result<int64_t> Revision() override { return Count(inner_->Revision()); }
  Result<std::optional<KeyValue>> Get(const std::string& key) override { return Count(inner_->Get(key)); }
  Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr) override {
    return Count(inner_->GetPrefix(prefix, revision));
  }
  Result<TxnResult> Commit(const Txn& txn) override { return Count(inner_->Commit(txn)); }
  Result<LeaseId> GrantLease(Duration ttl) override { return Count(inner_->GrantLease(ttl)); }
  Status KeepAlive(LeaseId lease) override { return CountStatus(inner_->KeepAlive(lease)); }
  Status RevokeLease(LeaseId lease) override { return CountStatus(inner_->RevokeLease(lease)); }
  Result<WatchResult> Watch(const std::string& prefix, int64_t after_revision, Duration timeout) override {
    return Count(inner_->Watch(prefix, after_revision, timeout));
  }
  Store& Backend() override { return inner_->Backend(); }

 private:
  // An unreachable store is named as such wherever its error ends up
  // (status, list, the event log): "store unavailable: <why>".
  static Status Named(const Status& st) {
    return st.code() == Status::Code::kUnavailable ? st.WithContext("store unavailable") : st;
  }
  template <typename T>
  Result<T> Count(Result<T> r) {
    if (r.ok()) return r;
    counters_.Add("reactor_store_errors_total", {});
    return Named(r.status());
  }
  Status CountStatus(Status st) {
    if (st.ok()) return st;
    counters_.Add("reactor_store_errors_total", {});
    return Named(st);
  }

  std::unique_ptr<Store> inner_;
  CounterRegistry& counters_;
};

}  // namespace reactor
