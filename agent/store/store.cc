#include "agent/store/store.h"

namespace reactor {

Result<int64_t> Store::Put(const std::string& key, const std::string& value, LeaseId lease) {
  Txn txn;
  txn.success.push_back(Op::Put(key, value, lease));
  auto r = Commit(txn);
  if (!r.ok()) return r.status();
  return r->revision;
}

Result<int64_t> Store::CompareAndSwap(const std::string& key, int64_t expected, const std::string& value,
                                      LeaseId lease) {
  Txn txn;
  txn.compares.push_back(Compare::ModRevisionIs(key, expected));
  txn.success.push_back(Op::Put(key, value, lease));
  auto r = Commit(txn);
  if (!r.ok()) return r.status();
  if (!r->succeeded) return Status::Conflict("'" + key + "' changed since revision " + std::to_string(expected));
  return r->revision;
}

Status Store::Delete(const std::string& key) {
  Txn txn;
  txn.success.push_back(Op::Delete(key));
  return Commit(txn).status();
}

Status Store::DeletePrefix(const std::string& prefix) {
  Txn txn;
  txn.success.push_back(Op::DeletePrefix(prefix));
  return Commit(txn).status();
}

}  // namespace reactor
