#include "agent/cluster/cluster_view.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/cluster/host_membership.h"
#include "agent/store/keys.h"

namespace reactor {

namespace {

constexpr int kSlotRetries = 8;

std::string Tail(const std::string& key, const std::string& prefix) { return key.substr(prefix.size()); }

// 64-bit FNV-1a: the same on every host and every build (std::hash is not).
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// A put of `record` at the next revision, if it is where the caller read it.
Compare RecordUnchanged(const InstanceRecord& r) {
  return Compare::ModRevisionIs(InstanceKey(r.endpoint, r.id), r.mod_revision);
}

// After a failed transaction: does `fence` no longer hold? (A store error
// counts as "still holds": the caller retries next round.)
bool FenceLost(Store& store, const Fence* fence) {
  if (fence == nullptr) return false;
  auto owner = store.Get(fence->key);
  return owner.ok() && (!owner->has_value() || (*owner)->create_revision != fence->token);
}

Status FencedOutOf(const InstanceRecord& r) { return Status::FencedOut("ownership of " + r.endpoint + " was lost"); }

}  // namespace

std::string EncodeSlotRecord(int used) { return nlohmann::json{{"used", used}}.dump(); }

Result<int> DecodeSlotRecord(const std::string& value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("used") || !j["used"].is_number_integer()) {
    return Status::Internal("malformed slot record '" + value + "'");
  }
  return j["used"].get<int>();
}

Status SetDrain(Store& store, const std::string& manager, bool draining) {
  if (!IsValidKeySegment(manager)) return Status::InvalidArgument("bad manager name '" + manager + "'");
  if (!draining) return store.Delete(DrainKey(manager));
  Txn t;
  t.success = {Op::Put(DrainKey(manager), "1"), Op::Put(CordonKey(manager), "1")};
  auto r = store.Commit(t);
  return r.ok() ? Status::Ok() : r.status();
}

Result<ClusterView> ReadClusterView(Store& store, const std::string& self, int self_slots,
                                    const std::vector<std::string>& self_drivers,
                                    const std::vector<InstanceRecord>& instances) {
  auto hosts = store.GetPrefix(ManagerPrefix());
  if (!hosts.ok()) return hosts.status();
  auto slots = store.GetPrefix(SlotPrefix());
  if (!slots.ok()) return slots.status();
  auto cordons = store.GetPrefix(CordonPrefix());
  if (!cordons.ok()) return cordons.status();
  auto drains = store.GetPrefix(DrainPrefix());
  if (!drains.ok()) return drains.status();
  auto owners = store.GetPrefix(OwnerPrefix());
  if (!owners.ok()) return owners.status();

  ClusterView view;
  for (const auto& kv : *hosts) {
    auto r = DecodeHostRecord(kv.value);
    if (!r.ok() || r->name != Tail(kv.key, ManagerPrefix())) continue;
    HostView& h = view.hosts[r->name];
    h.name = r->name;
    h.address = r->address;
    h.slots = r->slots;
    h.drivers = r->drivers;
  }
  HostView& me = view.hosts[self];
  me.name = self;
  me.slots = self_slots;
  me.drivers = self_drivers;

  std::map<std::string, int> assigned;  // host → slots its instance records hold
  for (const auto& r : instances) assigned[r.manager] += r.slots;
  for (auto& [name, h] : view.hosts) h.used = assigned[name];
  for (const auto& kv : *slots) {
    auto it = view.hosts.find(Tail(kv.key, SlotPrefix()));
    if (it == view.hosts.end()) continue;
    auto used = DecodeSlotRecord(kv.value);
    // A ledger that does not read is rewritten from the instance records
    // at the next reservation (its revision still guards the swap).
    if (used.ok()) it->second.used = *used;
    it->second.slot_rev = kv.mod_revision;
  }
  for (const auto& kv : *cordons) {
    auto it = view.hosts.find(Tail(kv.key, CordonPrefix()));
    if (it != view.hosts.end()) it->second.cordoned = true;
  }
  for (const auto& kv : *drains) {
    auto it = view.hosts.find(Tail(kv.key, DrainPrefix()));
    if (it != view.hosts.end()) it->second.draining = true;
  }
  for (const auto& kv : *owners) view.owners[Tail(kv.key, OwnerPrefix())] = kv;
  return view;
}

std::optional<std::string> ChooseHost(const ClusterView& view, PlacementKind placement, const std::string& driver,
                                      int cost, const std::map<std::string, int>& per_host, size_t* cursor,
                                      std::string* why) {
  std::vector<const HostView*> fits;
  std::vector<std::string> full, refused;  // why each other host cannot take it
  for (const auto& [name, h] : view.hosts) {
    if (h.draining) {
      refused.push_back(name + " is being drained");
    } else if (h.cordoned) {
      refused.push_back(name + " is cordoned");
    } else if (std::find(h.drivers.begin(), h.drivers.end(), driver) == h.drivers.end()) {
      refused.push_back(name + " has no " + driver + " driver");
    } else if (h.Free() < cost) {
      full.push_back(name + " has " + std::to_string(h.used) + " of " + std::to_string(h.slots) + " used");
    } else {
      fits.push_back(&h);
    }
  }
  if (fits.empty()) {
    std::string text = refused.empty() ? "no free slots: " : "no host takes a new instance: ";
    bool first = true;
    for (const auto* list : {&full, &refused}) {
      for (const auto& item : *list) {
        text += (first ? "" : "; ") + item;
        first = false;
      }
    }
    *why = text + ", an instance needs " + std::to_string(cost);
    return std::nullopt;
  }
  auto replicas = [&](const HostView* h) {
    auto it = per_host.find(h->name);
    return it == per_host.end() ? 0 : it->second;
  };
  auto utilisation = [](const HostView* h) { return h->slots <= 0 ? 1.0 : static_cast<double>(h->used) / h->slots; };
  const HostView* best = nullptr;
  if (placement == PlacementKind::kRoundRobin) {
    // Host names in order, from the cursor on.
    best = fits[*cursor % fits.size()];
    *cursor = (*cursor % fits.size()) + 1;
    return best->name;
  }
  for (const HostView* h : fits) {
    if (best == nullptr) {
      best = h;
      continue;
    }
    if (placement == PlacementKind::kSpread) {
      // Replicas of one endpoint on different hosts first, then the least
      // utilised host, then the most free slots; names break ties.
      if (replicas(h) != replicas(best)) {
        if (replicas(h) < replicas(best)) best = h;
        continue;
      }
      if (utilisation(h) != utilisation(best)) {
        if (utilisation(h) < utilisation(best)) best = h;
        continue;
      }
      if (h->Free() > best->Free()) best = h;
    } else {
      // Pack: the most utilised host that fits, so whole hosts stay free.
      if (utilisation(h) != utilisation(best)) {
        if (utilisation(h) > utilisation(best)) best = h;
        continue;
      }
      if (h->Free() < best->Free()) best = h;
    }
  }
  return best->name;
}

std::string PreferredOwner(const std::string& endpoint, const std::vector<std::string>& hosts) {
  std::string best;
  uint64_t best_score = 0;
  for (const auto& h : hosts) {
    uint64_t score = Fnv1a(endpoint + "\n" + h);
    if (best.empty() || score > best_score || (score == best_score && h < best)) {
      best = h;
      best_score = score;
    }
  }
  return best;
}

Status ReserveInstance(Store& store, ClusterView& view, const Fence& fence, InstanceRecord& record) {
  auto it = view.hosts.find(record.manager);
  if (it == view.hosts.end()) return Status::Conflict("host " + record.manager + " is gone");
  HostView& h = it->second;
  if (record.slots > 0 && h.Free() < record.slots) {
    return Status::Conflict("host " + h.name + " is full (" + std::to_string(h.used) + "/" + std::to_string(h.slots) +
                            ")");
  }
  Txn t;
  t.compares.push_back(fence.Check());
  t.compares.push_back(Compare::Absent(InstanceKey(record.endpoint, record.id)));
  if (record.slots > 0) {
    t.compares.push_back(Compare::ModRevisionIs(SlotKey(h.name), h.slot_rev));
    t.success.push_back(Op::Put(SlotKey(h.name), EncodeSlotRecord(h.used + record.slots)));
  }
  t.success.push_back(Op::Put(InstanceKey(record.endpoint, record.id), EncodeInstance(record)));
  auto r = store.Commit(t);
  if (!r.ok()) return r.status();
  if (!r->succeeded) {
    if (FenceLost(store, &fence)) return FencedOutOf(record);
    // The slot record moved (another owner placed or released): re-read it.
    auto slot = store.Get(SlotKey(h.name));
    if (slot.ok()) {
      h.slot_rev = slot->has_value() ? (*slot)->mod_revision : 0;
      if (slot->has_value()) {
        auto used = DecodeSlotRecord((*slot)->value);
        if (used.ok()) h.used = *used;
      }
    }
    return Status::Conflict("the slot record of " + h.name + " changed; choose again");
  }
  record.mod_revision = r->revision;
  if (record.slots > 0) {
    h.used += record.slots;
    h.slot_rev = r->revision;
  }
  return Status::Ok();
}

Status ReleaseInstance(Store& store, const InstanceRecord& record, const Fence* fence) {
  const std::string key = InstanceKey(record.endpoint, record.id);
  for (int attempt = 0; attempt < kSlotRetries; ++attempt) {
    Txn t;
    if (fence != nullptr) t.compares.push_back(fence->Check());
    t.compares.push_back(RecordUnchanged(record));
    t.success.push_back(Op::Delete(key));
    if (record.slots > 0 && !record.manager.empty()) {
      auto slot = store.Get(SlotKey(record.manager));
      if (!slot.ok()) return slot.status();
      if (slot->has_value()) {
        auto used = DecodeSlotRecord((*slot)->value);
        int left = used.ok() ? std::max(0, *used - record.slots) : 0;
        t.compares.push_back(Compare::ModRevisionIs(SlotKey(record.manager), (*slot)->mod_revision));
        t.success.push_back(Op::Put(SlotKey(record.manager), EncodeSlotRecord(left)));
      } else {
        t.compares.push_back(Compare::Absent(SlotKey(record.manager)));
      }
    }
    auto r = store.Commit(t);
    if (!r.ok()) return r.status();
    if (r->succeeded) return Status::Ok();
    // Which compare failed? The record (someone else changed it: leave it
    // to the next round), the fence (ownership lost), or the slot record
    // (a race with a placement: try again).
    auto now = store.Get(key);
    if (!now.ok()) return now.status();
    if (!now->has_value()) return Status::Ok();  // already gone, slots given back by whoever removed it
    if ((*now)->mod_revision != record.mod_revision) return Status::Conflict("instance " + record.id + " changed");
    if (FenceLost(store, fence)) return FencedOutOf(record);
  }
  return Status::Unavailable("the slot record of " + record.manager + " kept changing");
}

Status UpdateInstance(Store& store, InstanceRecord& record, const Fence* fence) {
  Txn t;
  if (fence != nullptr) t.compares.push_back(fence->Check());
  t.compares.push_back(RecordUnchanged(record));
  t.success.push_back(Op::Put(InstanceKey(record.endpoint, record.id), EncodeInstance(record)));
  auto r = store.Commit(t);
  if (!r.ok()) return r.status();
  if (!r->succeeded) {
    if (FenceLost(store, fence)) return FencedOutOf(record);
    return Status::Conflict("instance " + record.id + " changed");
  }
  record.mod_revision = r->revision;
  return Status::Ok();
}

}  // namespace reactor
