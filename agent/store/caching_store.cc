#include "agent/store/caching_store.h"

#include <algorithm>
#include <chrono>
#include <type_traits>

namespace reactor {
namespace {

constexpr Duration kWatchSlice(250);  // a wait, not a round trip: the stream stays open
constexpr auto kRetryPause = std::chrono::milliseconds(500);

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

CachingStore::CachingStore(std::unique_ptr<Store> base, std::vector<std::string> prefixes) : base_(std::move(base)) {
  for (auto& p : prefixes) {
    auto c = std::make_unique<Cached>();
    c->prefix = std::move(p);
    cached_.push_back(std::move(c));
  }
  for (auto& c : cached_) c->thread = std::thread([this, raw = c.get()] { Follow(raw); });
}

CachingStore::~CachingStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  for (auto& c : cached_) {
    if (c->thread.joinable()) c->thread.join();
  }
}

CachingStore::Cached* CachingStore::Find(const std::string& key_or_prefix) {
  for (auto& c : cached_) {
    if (StartsWith(key_or_prefix, c->prefix)) return c.get();
  }
  return nullptr;
}

bool CachingStore::Serving(const Cached& c) const { return c.synced && !base_failing_ && !stop_; }

template <typename T>
T CachingStore::Note(T result) {
  // Only Unavailable says the real store did not answer; NotFound or a
  // Conflict are answers.
  if constexpr (std::is_same_v<T, Status>) {
    base_failing_ = result.code() == Status::Code::kUnavailable;
  } else {
    base_failing_ = !result.ok() && result.status().code() == Status::Code::kUnavailable;
  }
  return result;
}

bool CachingStore::AllSynced() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : cached_) {
    if (!Serving(*c)) return false;
  }
  return true;
}

Result<int64_t> CachingStore::Revision() { return Note(base_->Revision()); }

Result<std::optional<KeyValue>> CachingStore::Get(const std::string& key) {
  if (Cached* c = Find(key)) {
    std::lock_guard<std::mutex> lock(mu_);
    if (Serving(*c)) {
      auto it = c->keys.find(key);
      if (it == c->keys.end()) return std::optional<KeyValue>();
      return std::optional<KeyValue>(it->second);
    }
  }
  return Note(base_->Get(key));
}

Result<std::vector<KeyValue>> CachingStore::GetPrefix(const std::string& prefix, int64_t* revision) {
  if (Cached* c = Find(prefix)) {
    std::unique_lock<std::mutex> lock(mu_);
    bool caught_up = true;
    if (revision && Serving(*c) && c->revision < c->own_revision) {
      caught_up = changed_.wait_for(lock, kCatchUp, [&] { return !Serving(*c) || c->revision >= c->own_revision; });
      // A delete that found nothing left no event to wait for: this read
      // goes to the real store, the next ones need not wait for it.
      if (!caught_up) c->own_revision = c->revision;
    }
    if (caught_up && Serving(*c)) {
      std::vector<KeyValue> out;
      for (auto it = c->keys.lower_bound(prefix); it != c->keys.end() && StartsWith(it->first, prefix); ++it) {
        out.push_back(it->second);
      }
      if (revision) *revision = c->revision;
      return out;
    }
  }
  return Note(base_->GetPrefix(prefix, revision));
}

Result<TxnResult> CachingStore::Commit(const Txn& txn) {
  auto r = Note(base_->Commit(txn));
  if (r.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ApplyOwn(r->succeeded ? txn.success : txn.failure, r->revision);
  }
  return r;
}

Result<LeaseId> CachingStore::GrantLease(Duration ttl) { return Note(base_->GrantLease(ttl)); }
Status CachingStore::KeepAlive(LeaseId lease) { return Note(base_->KeepAlive(lease)); }
Status CachingStore::RevokeLease(LeaseId lease) {
  Status st = Note(base_->RevokeLease(lease));
  if (st.ok()) {
    // Its keys are gone; the watch's delete events follow (an older put
    // arriving first may show a key again until its delete does).
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : cached_) {
      for (auto it = c->keys.begin(); it != c->keys.end();) {
        it = it->second.lease == lease ? c->keys.erase(it) : std::next(it);
      }
    }
  }
  return st;
}

Result<WatchResult> CachingStore::Watch(const std::string& prefix, int64_t after_revision, Duration timeout) {
  Cached* c = Find(prefix);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (c) {
    std::unique_lock<std::mutex> lock(mu_);
    while (Serving(*c) && after_revision >= c->history_base) {
      WatchResult out;
      auto it = std::upper_bound(c->history.begin(), c->history.end(), after_revision,
                                 [](int64_t rev, const WatchEvent& e) { return rev < e.kv.mod_revision; });
      for (; it != c->history.end(); ++it) {
        if (StartsWith(it->kv.key, prefix)) out.events.push_back(*it);
      }
      out.revision = std::max(after_revision, c->revision);
      if (!out.events.empty() || std::chrono::steady_clock::now() >= deadline) return out;
      changed_.wait_until(lock, deadline);
    }
  }
  // Not cached, not followed right now, or older than the events kept.
  const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
  return Note(base_->Watch(prefix, after_revision, std::max(left, Duration(0))));
}

void CachingStore::Follow(Cached* c) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!c->synced) {
      lock.unlock();
      int64_t revision = 0;
      auto kvs = base_->GetPrefix(c->prefix, &revision);
      lock.lock();
      if (!kvs.ok()) {
        changed_.wait_for(lock, kRetryPause, [&] { return stop_.load(); });
        continue;
      }
      Load(c, std::move(*kvs), revision);
      changed_.notify_all();
      continue;
    }
    const int64_t after = c->revision;
    lock.unlock();
    auto w = base_->Watch(c->prefix, after, kWatchSlice);
    lock.lock();
    if (!w.ok() || w->compacted) {
      // Re-read the prefix; until then calls under it go to the real store.
      c->synced = false;
      changed_.notify_all();
      if (!w.ok()) changed_.wait_for(lock, kRetryPause, [&] { return stop_.load(); });
      continue;
    }
    if (w->events.empty()) continue;
    for (const auto& e : w->events) Apply(c, e);
    c->revision = std::max(c->revision, w->revision);
    for (auto it = c->deleted.begin(); it != c->deleted.end();) {
      it = it->second <= c->revision ? c->deleted.erase(it) : std::next(it);
    }
    changed_.notify_all();
  }
}

void CachingStore::Load(Cached* c, std::vector<KeyValue> kvs, int64_t revision) {
  std::map<std::string, KeyValue> keys;
  for (auto& kv : kvs) keys.emplace(kv.key, std::move(kv));
  // This process's own writes after the snapshot stay until the watch brings them.
  for (auto& [key, kv] : c->keys) {
    if (kv.mod_revision > revision) keys[key] = kv;
  }
  for (auto it = c->deleted.begin(); it != c->deleted.end();) {
    if (it->second > revision) {
      keys.erase(it->first);
      ++it;
    } else {
      it = c->deleted.erase(it);
    }
  }
  c->keys = std::move(keys);
  c->revision = revision;
  c->history.clear();
  c->history_base = revision;
  c->synced = true;
}

void CachingStore::Apply(Cached* c, const WatchEvent& e) {
  const std::string& key = e.kv.key;
  const int64_t rev = e.kv.mod_revision;
  auto it = c->keys.find(key);
  auto gone = c->deleted.find(key);
  const bool newer_own =
      (it != c->keys.end() && it->second.mod_revision > rev) || (gone != c->deleted.end() && gone->second > rev);
  if (!newer_own) {
    if (e.type == WatchEvent::Type::kPut) {
      c->keys[key] = e.kv;
    } else if (it != c->keys.end()) {
      c->keys.erase(it);
    }
  }
  c->history.push_back(e);
  while (c->history.size() > kHistory) {
    c->history_base = c->history.front().kv.mod_revision;
    c->history.pop_front();
  }
  c->revision = std::max(c->revision, rev);
}

void CachingStore::ApplyOwn(const std::vector<Op>& ops, int64_t revision) {
  for (const Op& op : ops) {
    for (auto& c : cached_) {
      if (!c->synced) continue;  // it is loaded again before it answers
      if (op.type == Op::Type::kDeletePrefix) {
        // The range may lie inside this prefix or contain all of it.
        if (!StartsWith(op.key, c->prefix) && !StartsWith(c->prefix, op.key)) continue;
        const std::string& from = op.key.size() > c->prefix.size() ? op.key : c->prefix;
        for (auto it = c->keys.lower_bound(from); it != c->keys.end() && StartsWith(it->first, from);) {
          if (it->second.mod_revision < revision) {
            c->own_revision = std::max(c->own_revision, revision);  // a delete event will come
            c->deleted[it->first] = revision;
            it = c->keys.erase(it);
          } else {
            ++it;
          }
        }
        continue;
      }
      if (!StartsWith(op.key, c->prefix)) continue;
      auto it = c->keys.find(op.key);
      if (it != c->keys.end() && it->second.mod_revision >= revision) continue;  // the watch was first
      // A put always makes an event; a delete only of a key that was there.
      if (op.type == Op::Type::kPut || it != c->keys.end()) c->own_revision = std::max(c->own_revision, revision);
      if (op.type == Op::Type::kDelete) {
        if (it != c->keys.end()) c->keys.erase(it);
        c->deleted[op.key] = revision;
        continue;
      }
      KeyValue kv;
      kv.key = op.key;
      kv.value = op.value;
      kv.lease = op.lease;
      kv.mod_revision = revision;
      kv.create_revision = it != c->keys.end() ? it->second.create_revision : revision;
      kv.version = it != c->keys.end() ? it->second.version + 1 : 1;
      c->keys[op.key] = std::move(kv);
      c->deleted.erase(op.key);
    }
  }
}

}  // namespace reactor
