// An instance's lifecycle, persisted in the Store under InstanceKey(endpoint,
// id) so that it survives agent restarts:
//
//   starting ──rise successes──▶ active ──scale-down/stop──▶ draining ──idle or drain_timeout──▶ (deleted)
//      │                           │
//      └──exit / no health in time─┴──exit / fall failures──▶ errored ──▶ (stopped, deleted, replaced)
//
// Only `active` instances are in the nginx upstream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/store/store.h"

namespace reactor {

enum class InstanceState { kStarting, kActive, kDraining, kErrored };
const char* InstanceStateName(InstanceState s);

struct InstanceRecord {
  std::string id;
  std::string endpoint;
  std::string address;  // host:port; empty until launched
  InstanceState state = InstanceState::kStarting;
  std::string manager;  // the host that runs it
  std::string cloud;    // process | docker | static
  int slots = 0;
  int64_t created_ms = 0;      // wall clock
  int64_t state_since_ms = 0;  // wall clock of the last transition
  std::string reason;          // why it is in its state
  int64_t activated_ms = 0;    // wall clock of its first health pass; 0 = it never served
  int64_t mod_revision = 0;    // from the store; not encoded
};

/// The instance's health-check target id, unique across endpoints: static
/// instance ids come from their address, which several endpoints may share.
inline std::string HealthTargetId(const InstanceRecord& r) {
  return r.cloud == "static" ? r.endpoint + "/" + r.id : r.id;
}

std::string EncodeInstance(const InstanceRecord& r);
Result<InstanceRecord> DecodeInstance(const KeyValue& kv);

/// Store access for instance records.
class InstanceTable {
 public:
  explicit InstanceTable(Store& store) : store_(store) {}
  /// Every instance of every endpoint. Records that do not decode are not
  /// returned; their instance ids (the last key segment) go to `unreadable`
  /// when given, so that nothing they describe is taken for a stray.
  Result<std::vector<InstanceRecord>> ListAll(std::vector<std::string>* unreadable = nullptr);
  Result<std::vector<InstanceRecord>> List(const std::string& endpoint);
  Status Put(const InstanceRecord& r);
  Status Remove(const std::string& endpoint, const std::string& id);

 private:
  Store& store_;
};

}  // namespace reactor
