// What one round knows of the cluster (SPEC §13): the live hosts with their
// slots, cordons and drivers, and who owns which endpoint. Read once per
// round from the store; every decision of the round is made against it and
// every write it leads to is a compare-and-swap, so a stale view costs a
// retry, never a wrong state.
//
// Also the slot ledger (one record per host, updated in the same transaction
// as the instance it accounts for) and where a new instance goes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"
#include "agent/instances/instance_record.h"
#include "agent/store/store.h"

namespace reactor {

/// An owner's right to write for one endpoint: the owner key and the create
/// revision it had when this host claimed it. Every owner write compares it.
struct Fence {
  std::string key;
  int64_t token = 0;
  Compare Check() const { return {key, Compare::Target::kCreateRevision, Compare::Op::kEqual, token, {}}; }
};

struct HostView {
  std::string name;
  std::string address;
  int slots = 0;         // total
  int used = 0;          // from its slot record (or, when it has none yet, its instances)
  int64_t slot_rev = 0;  // the slot record's mod revision; 0 = absent
  bool cordoned = false;
  bool draining = false;             // `reactor managers drain`: its instances move elsewhere
  std::vector<std::string> drivers;  // cloud names it runs ("process", "docker")
  int Free() const { return slots - used; }
};

struct ClusterView {
  std::map<std::string, HostView> hosts;   // live hosts only (a record under a lease)
  std::map<std::string, KeyValue> owners;  // endpoint → its owner key
  bool IsUp(const std::string& host) const { return hosts.count(host) > 0; }
};

/// Reads hosts, slot records, cordons, drains and owners. `self` is always
/// in the view, with `self_slots` and `self_drivers` (its own record may lag,
/// or be absent where no membership runs). `instances` gives the used slots
/// of hosts without a slot record yet.
Result<ClusterView> ReadClusterView(Store& store, const std::string& self, int self_slots,
                                    const std::vector<std::string>& self_drivers,
                                    const std::vector<InstanceRecord>& instances);

/// Drains: `reactor managers drain NAME` (persistent until uncordon).
Status SetDrain(Store& store, const std::string& manager, bool draining);

std::string EncodeSlotRecord(int used);
/// Used slots, or an error for a record that does not read.
Result<int> DecodeSlotRecord(const std::string& value);

/// The host a new instance of an endpoint goes to, or nullopt with `why`
/// naming the hosts that were full. `per_host` counts the endpoint's live
/// instances per host (replicas prefer different hosts); `cursor` is the
/// round-robin position (advanced past the chosen host).
std::optional<std::string> ChooseHost(const ClusterView& view, PlacementKind placement, const std::string& driver,
                                      int cost, const std::map<std::string, int>& per_host, size_t* cursor,
                                      std::string* why);

/// The host that should own an endpoint among `hosts` (rendezvous hashing:
/// every agent computes the same answer, and a host joining or leaving moves
/// only its share). Empty when `hosts` is.
std::string PreferredOwner(const std::string& endpoint, const std::vector<std::string>& hosts);

/// Writes `record` (a new instance) and reserves its slots on its host in one
/// transaction, with `fence`'s compare. Conflict when the host's slot record
/// moved or it is full (re-read and choose again); FencedOut when
/// the fence no longer holds (ownership lost). Updates the view's host.
Status ReserveInstance(Store& store, ClusterView& view, const Fence& fence, InstanceRecord& record);

/// Deletes an instance record and gives its slots back to its host, in one
/// transaction, retried on a slot-record race. The record must still be at
/// `record.mod_revision` (Conflict otherwise: someone changed it first).
/// `fence` is compared when given (owner writes), not for the host's own.
Status ReleaseInstance(Store& store, const InstanceRecord& record, const Fence* fence);

/// Writes a changed instance record if it is still at `record.mod_revision`
/// (and the fence holds, when given); sets the new mod revision. Conflict
/// otherwise.
Status UpdateInstance(Store& store, InstanceRecord& record, const Fence* fence);

}  // namespace reactor
