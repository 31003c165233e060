#include "agent/cluster/host_membership.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/instances/instance_record.h"
#include "agent/store/keys.h"

namespace reactor {

namespace {

using nlohmann::json;

}  // namespace

std::string EncodeHostRecord(const HostRecord& r) {
  return json{{"name", r.name},
              {"address", r.address},
              {"api", r.api},
              {"slots", r.slots},
              {"slots_used", r.slots_used},
              {"instances", r.instances},
              {"drivers", r.drivers},
              {"version", r.version},
              {"renewed_ms", r.renewed_ms},
              {"lease_ttl_ms", r.lease_ttl_ms}}
      .dump();
}

Result<HostRecord> DecodeHostRecord(const std::string& value) {
  auto j = json::parse(value, nullptr, false);
  if (!j.is_object()) return Status::Internal("malformed manager record");
  HostRecord r;
  try {
    r.name = j.value("name", "");
    r.address = j.value("address", "");
    r.api = j.value("api", "");
    r.slots = j.value("slots", 0);
    r.slots_used = j.value("slots_used", 0);
    r.instances = j.value("instances", 0);
    r.drivers = j.value("drivers", std::vector<std::string>{});
    r.version = j.value("version", "");
    r.renewed_ms = j.value("renewed_ms", int64_t{0});
    r.lease_ttl_ms = j.value("lease_ttl_ms", int64_t{0});
  } catch (const json::exception& e) {
    return Status::Internal(std::string("malformed manager record: ") + e.what());
  }
  if (r.name.empty()) return Status::Internal("manager record without a name");
  return r;
}

Status SetCordon(Store& store, const std::string& manager, bool cordoned) {
  if (!IsValidKeySegment(manager)) return Status::InvalidArgument("bad manager name '" + manager + "'");
  if (!cordoned) return store.Delete(CordonKey(manager));
  return store.Put(CordonKey(manager), "1").status();
}

Result<bool> IsCordoned(Store& store, const std::string& manager) {
  auto kv = store.Get(CordonKey(manager));
  if (!kv.ok()) return kv.status();
  return kv->has_value();
}

Result<std::vector<ManagerView>> ListManagers(Store& store, int64_t now_ms) {
  auto hosts = store.GetPrefix(ManagerPrefix());
  if (!hosts.ok()) return hosts.status();
  auto cordons = store.GetPrefix(CordonPrefix());
  if (!cordons.ok()) return cordons.status();
  auto drains = store.GetPrefix(DrainPrefix());
  if (!drains.ok()) return drains.status();
  auto owners = store.GetPrefix(OwnerPrefix());
  if (!owners.ok()) return owners.status();
  auto instances = InstanceTable(store).ListAll();
  if (!instances.ok()) return instances.status();

  std::set<std::string> cordoned;
  for (const auto& kv : *cordons) cordoned.insert(kv.key.substr(CordonPrefix().size()));
  std::set<std::string> draining;
  for (const auto& kv : *drains) draining.insert(kv.key.substr(DrainPrefix().size()));
  std::map<std::string, int> owned;
  for (const auto& kv : *owners) owned[kv.value]++;
  std::map<std::string, ManagerView> out;
  for (const auto& kv : *hosts) {
    auto r = DecodeHostRecord(kv.value);
    if (!r.ok()) continue;
    ManagerView v;
    v.name = r->name;
    v.address = r->address;
    v.slots = r->slots;
    v.slots_used = r->slots_used;
    v.instances = r->instances;
    v.state = cordoned.count(r->name) ? "cordoned" : "up";
    if (r->renewed_ms > 0 && r->lease_ttl_ms > 0) {
      v.lease_left_ms = std::max<int64_t>(0, r->renewed_ms + r->lease_ttl_ms - now_ms);
    }
    out[v.name] = v;
  }
  // Hosts still named by instances or cordons but without a live record.
  auto gone = [&](const std::string& name) {
    if (name.empty() || out.count(name)) return;
    ManagerView v;
    v.name = name;
    v.state = "gone";
    out[name] = v;
  };
  for (const auto& r : *instances) {
    if (r.cloud != "static") gone(r.manager);
  }
  for (const auto& name : cordoned) gone(name);
  for (const auto& r : *instances) {
    auto it = out.find(r.manager);
    if (it != out.end() && it->second.state == "gone" && r.cloud != "static") {
      it->second.instances++;
      it->second.slots_used += r.slots;
    }
  }
  std::vector<ManagerView> list;
  for (auto& [name, v] : out) {
    v.draining = draining.count(name) > 0;
    v.owned = owned.count(name) ? owned[name] : 0;
    list.push_back(std::move(v));
  }
  return list;
}

HostMembership::HostMembership(Options options, Store& store, EventLog& events, Clock& clock)
    : options_(std::move(options)), store_(store), events_(events), clock_(clock), record_(options_.record) {}

HostMembership::~HostMembership() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Leaving on purpose: the record goes now, not a TTL later.
  std::lock_guard<std::mutex> lock(mu_);
  if (lease_ != 0) (void)store_.RevokeLease(lease_);
}

Status HostMembership::RegisterLocked() {
  TimePoint sent = clock_.Now();
  const int64_t sent_ms = clock_.WallMillis();
  auto lease = store_.GrantLease(options_.lease_ttl);
  if (!lease.ok()) return lease.status();
  record_.renewed_ms = sent_ms;
  record_.lease_ttl_ms = options_.lease_ttl.count();
  std::string value = EncodeHostRecord(record_);
  auto put = store_.Put(ManagerKey(record_.name), value, *lease);
  if (!put.ok()) {
    (void)store_.RevokeLease(*lease);
    return put.status();
  }
  lease_ = *lease;
  renewed_ = sent;
  written_ = value;
  PublishLeaseLocked();
  return Status::Ok();
}

Status HostMembership::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  Status st = RegisterLocked();
  if (!st.ok()) return st.WithContext("registering manager " + record_.name);
  thread_ = std::thread([this] { KeepAliveLoop(); });
  return Status::Ok();
}

void HostMembership::Update(int slots_used, int instances) {
  std::lock_guard<std::mutex> lock(mu_);
  if (record_.slots_used == slots_used && record_.instances == instances) return;
  record_.slots_used = slots_used;
  record_.instances = instances;
  changed_ = true;  // written at once by the keep-alive thread, not a third of a TTL later
  cv_.notify_all();
}

void HostMembership::PublishLeaseLocked() {
  renewed_seen_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(renewed_.time_since_epoch()).count());
  lease_seen_.store(lease_);
}

Duration HostMembership::LeaseLeft() const {
  if (lease_seen_.load() == 0) return Duration(0);
  TimePoint renewed{std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(renewed_seen_ns_.load()))};
  auto left = std::chrono::duration_cast<Duration>(renewed + options_.lease_ttl - clock_.Now());
  return std::max(left, Duration(0));
}

void HostMembership::KeepAliveLoop() {
  const Duration period = std::max(options_.lease_ttl / 3, Duration(100));
  std::unique_lock<std::mutex> lock(mu_);
  TimePoint next_renewal = clock_.Now() + period;
  while (!exit_) {
    cv_.wait_for(lock, std::chrono::duration_cast<Duration>(next_renewal - clock_.Now()),
                 [this] { return exit_ || changed_; });
    if (exit_) return;
    if (changed_ && clock_.Now() < next_renewal) {
      // Only the counts changed: rewrite the record under the same lease.
      changed_ = false;
      std::string value = EncodeHostRecord(record_);
      if (lease_ != 0 && value != written_ && store_.Put(ManagerKey(record_.name), value, lease_).ok()) {
        written_ = value;
      }
      continue;
    }
    changed_ = false;
    next_renewal = clock_.Now() + period;
    // Store calls are made with the lock held: only this thread and the
    // destructor (after joining it) touch the lease.
    TimePoint sent = clock_.Now();
    const int64_t sent_ms = clock_.WallMillis();
    Status st = lease_ != 0 ? store_.KeepAlive(lease_) : Status::NotFound("no lease");
    if (st.IsNotFound()) {
      // Expired (the store was away for longer than the TTL): come back.
      lease_ = 0;
      PublishLeaseLocked();
      st = RegisterLocked();
      if (st.ok()) events_.Record("", "cluster", "manager " + record_.name + " re-registered with a new lease");
    } else if (st.ok()) {
      renewed_ = sent;
      PublishLeaseLocked();
      // The renewal time goes with every renewal: `reactor managers` shows
      // each host's lease time left from it.
      record_.renewed_ms = sent_ms;
      std::string value = EncodeHostRecord(record_);
      if (value != written_) {
        auto put = store_.Put(ManagerKey(record_.name), value, lease_);
        if (put.ok())
          written_ = value;
        else
          st = put.status();
      }
    }
    if (!st.ok() && st.message() != last_error_) {
      events_.Record("", "error", "manager " + record_.name + ": cannot renew its lease: " + st.ToString());
      last_error_ = st.message();
    } else if (st.ok() && !last_error_.empty()) {
      events_.Record("", "cluster", "manager " + record_.name + ": lease renewed again");
      last_error_.clear();
    }
  }
}

}  // namespace reactor
