#include "agent/cluster/owner_election.h"

#include <spdlog/spdlog.h>

#include "agent/common/units.h"
#include "agent/store/keys.h"

namespace reactor {

namespace {

constexpr int kMaxHandoffsPerRound = 4;

}  // namespace

OwnerElection::OwnerElection(Options options, Store& store, EventLog& events, Clock& clock)
    : options_(std::move(options)), store_(store), events_(events), clock_(clock) {}

bool OwnerElection::MayDecide() const {
  if (!options_.lease_left) return true;
  // Stop with a margin to spare: a third of the TTL, at least 500 ms.
  Duration margin = std::max(Duration(500), options_.lease_ttl / 3);
  return options_.lease_left() > margin;
}

std::string OwnerElection::OwnerOf(const ClusterView& view, const std::string& endpoint) {
  auto it = view.owners.find(endpoint);
  return it == view.owners.end() ? "" : it->second.value;
}

void OwnerElection::Refresh(const std::vector<std::string>& endpoints, ClusterView& view) {
  const TimePoint now = clock_.Now();
  const LeaseId lease = options_.lease ? options_.lease() : 0;
  std::vector<std::string> up;
  for (const auto& [name, h] : view.hosts) {
    up.push_back(name);
    host_seen_since_.emplace(name, now);
  }
  for (auto it = host_seen_since_.begin(); it != host_seen_since_.end();) {
    it = view.IsUp(it->first) ? std::next(it) : host_seen_since_.erase(it);
  }
  const bool deciding = MayDecide();
  int handoffs = 0;
  std::set<std::string> known(endpoints.begin(), endpoints.end());
  for (const auto& ep : endpoints) {
    auto it = view.owners.find(ep);
    const std::string preferred = PreferredOwner(ep, up);
    if (it != view.owners.end()) {
      missing_since_.erase(ep);
      const KeyValue& kv = it->second;
      if (kv.value == options_.self && (lease == 0 || kv.lease == lease)) {
        auto f = fences_.find(ep);
        if (f == fences_.end() || f->second.token != kv.create_revision) {
          // Ours, but not by a claim this process made (a restart within
          // the old lease is not possible: the lease differs then).
          fences_[ep] = Fence{kv.key, kv.create_revision};
        }
        // Rebalance: hand the endpoint to the host that should own it, once
        // that host has been up long enough not to be flapping.
        auto seen = host_seen_since_.find(preferred);
        if (deciding && preferred != options_.self && seen != host_seen_since_.end() &&
            now - seen->second >= 2 * options_.lease_ttl && handoffs < kMaxHandoffsPerRound) {
          Txn t;
          t.compares.push_back(fences_[ep].Check());
          t.success.push_back(Op::Delete(kv.key));
          auto r = store_.Commit(t);
          if (r.ok() && r->succeeded) {
            ++handoffs;
            fences_.erase(ep);
            destroy_after_.erase(ep);
            view.owners.erase(ep);
            last_owner_[ep] = options_.self;
            events_.Record(
                ep, "owner",
                "manager " + options_.self + " hands the endpoint to " + preferred + ", its preferred owner");
          }
        }
        continue;
      }
      if (kv.value == options_.self) {
        // Our name under another lease: an earlier run of this agent. It is
        // dead (we run under the name now); take the key back at once.
        Txn t;
        t.compares.push_back(
            Compare{kv.key, Compare::Target::kCreateRevision, Compare::Op::kEqual, kv.create_revision, {}});
        t.success.push_back(Op::Delete(kv.key));
        auto r = store_.Commit(t);
        if (r.ok() && r->succeeded) {
          view.owners.erase(ep);
          if (deciding) Claim(ep, view, options_.self);
        }
        continue;
      }
      if (fences_.erase(ep)) {
        destroy_after_.erase(ep);
        events_.Record(ep, "owner", "manager " + options_.self + " no longer owns the endpoint: " + kv.value + " does");
      }
      last_owner_[ep] = kv.value;
      continue;
    }
    // No owner.
    if (fences_.erase(ep)) {
      destroy_after_.erase(ep);
      events_.Record(ep, "owner", "manager " + options_.self + " lost the endpoint: its owner key is gone");
    }
    auto missing = missing_since_.emplace(ep, now).first;
    if (!deciding) continue;
    if (preferred == options_.self || now - missing->second >= options_.lease_ttl) {
      auto last = last_owner_.find(ep);
      Claim(ep, view, last == last_owner_.end() ? "" : last->second);
    }
  }
  for (auto it = fences_.begin(); it != fences_.end();) {
    it = known.count(it->first) ? std::next(it) : fences_.erase(it);
  }
  for (auto* m : {&missing_since_, &destroy_after_}) {
    for (auto it = m->begin(); it != m->end();) it = known.count(it->first) ? std::next(it) : m->erase(it);
  }
  for (auto it = last_owner_.begin(); it != last_owner_.end();) {
    it = known.count(it->first) ? std::next(it) : last_owner_.erase(it);
  }
  std::lock_guard<std::mutex> lock(count_mu_);
  owned_ = static_cast<int>(fences_.size());
}

void OwnerElection::Claim(const std::string& endpoint, ClusterView& view, const std::string& previous) {
  const std::string key = OwnerKey(endpoint);
  const LeaseId lease = options_.lease ? options_.lease() : 0;
  if (options_.lease && lease == 0) return;  // not registered yet
  Txn t;
  t.compares.push_back(Compare::Absent(key));
  t.success.push_back(Op::Put(key, options_.self, lease));
  auto r = store_.Commit(t);
  if (!r.ok()) {
    spdlog::warn("claiming endpoint {}: {}", endpoint, r.status().ToString());
    return;
  }
  if (!r->succeeded) return;  // another host was first
  KeyValue kv;
  kv.key = key;
  kv.value = options_.self;
  kv.create_revision = r->revision;
  kv.mod_revision = r->revision;
  kv.version = 1;
  kv.lease = lease;
  view.owners[endpoint] = kv;
  fences_[endpoint] = Fence{key, r->revision};
  missing_since_.erase(endpoint);
  std::string from = previous.empty() || previous == options_.self ? "" : " from " + previous;
  if (options_.takeover_wait.count() > 0 && previous != options_.self) {
    destroy_after_[endpoint] = clock_.Now() + options_.takeover_wait;
    events_.Record(endpoint, "owner",
                   "manager " + options_.self + " owns the endpoint" + from + " (fencing token " +
                       std::to_string(r->revision) + "); no scale-down or retirement for " +
                       FormatDuration(options_.takeover_wait));
  } else {
    events_.Record(endpoint, "owner",
                   "manager " + options_.self + " owns the endpoint" + from + " (fencing token " +
                       std::to_string(r->revision) + ")");
  }
  last_owner_[endpoint] = options_.self;
}

std::optional<Fence> OwnerElection::FenceFor(const std::string& endpoint) const {
  auto it = fences_.find(endpoint);
  if (it == fences_.end()) return std::nullopt;
  return it->second;
}

bool OwnerElection::MayDestroy(const std::string& endpoint) const {
  auto it = destroy_after_.find(endpoint);
  return it == destroy_after_.end() || clock_.Now() >= it->second;
}

void OwnerElection::Lost(const std::string& endpoint, const std::string& why) {
  if (!fences_.erase(endpoint)) return;
  destroy_after_.erase(endpoint);
  events_.Record(endpoint, "owner", "manager " + options_.self + " stops acting for the endpoint: " + why);
  std::lock_guard<std::mutex> lock(count_mu_);
  owned_ = static_cast<int>(fences_.size());
}

int OwnerElection::Owned() const {
  std::lock_guard<std::mutex> lock(count_mu_);
  return owned_;
}

}  // namespace reactor
