#include "agent/api/event_hub.h"

#include <spdlog/spdlog.h>

#include "agent/store/keys.h"

namespace reactor {

namespace {

// How long one Watch call waits; also how soon Stop is noticed by the thread.
constexpr Duration kWatchSlice(500);

// "/reactor/events/web/000…123" → "web"; "" when the key is not an event.
std::string LogOfKey(const std::string& key, const std::string& root) {
  if (key.compare(0, root.size(), root) != 0) return "";
  auto slash = key.find('/', root.size());
  if (slash == std::string::npos || slash == root.size()) return "";
  return key.substr(root.size(), slash - root.size());
}

}  // namespace

EventHub::EventHub(Store& store, size_t capacity) : store_(store), capacity_(capacity) {}

EventHub::~EventHub() { Stop(); }

Status EventHub::Start() {
  auto rev = store_.Revision();
  if (!rev.ok()) return rev.status().WithContext("event stream");
  thread_ = std::thread([this, r = *rev] { Run(r); });
  return Status::Ok();
}

void EventHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t EventHub::Cursor() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_;
}

void EventHub::Append(std::vector<HubEvent> events, bool gap) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (gap) gap_before_ = end_ + 1;
    for (auto& e : events) {
      ring_.push_back(std::move(e));
      ++end_;
      if (ring_.size() > capacity_) ring_.pop_front();
    }
    if (gap && events.empty()) ++end_;  // readers must wake to see the gap
  }
  cv_.notify_all();
}

void EventHub::Run(int64_t revision) {
  const std::string root = EventRootPrefix();
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    auto w = store_.Watch(root, revision, kWatchSlice);
    if (!w.ok()) {
      // The store is unreachable (etcd down): readers keep their streams and
      // resync from history once it answers again.
      spdlog::warn("event stream: watch failed: {}", w.status().ToString());
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
      continue;
    }
    if (w->compacted) {
      auto rev = store_.Revision();
      revision = rev.ok() ? *rev : revision;
      Append({}, true);
      continue;
    }
    revision = w->revision;
    std::vector<HubEvent> batch;
    for (const auto& ev : w->events) {
      if (ev.type != WatchEvent::Type::kPut) continue;  // trimming
      std::string log = LogOfKey(ev.kv.key, root);
      if (log.empty()) continue;
      batch.push_back({std::move(log), DecodeEvent(ev.kv)});
    }
    if (!batch.empty()) Append(std::move(batch), false);
  }
}

EventHub::Batch EventHub::Next(uint64_t cursor, Duration wait) const {
  Batch out;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [&] { return stop_ || end_ > cursor; });
  out.stopped = stop_;
  out.cursor = end_;
  const uint64_t first_kept = end_ - ring_.size();
  if (cursor < gap_before_ || cursor < first_kept) out.gap = end_ > cursor;
  for (uint64_t c = std::max(cursor, first_kept); c < end_; ++c) out.events.push_back(ring_[c - first_kept]);
  return out;
}

bool StreamSlots::TryAcquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_use_ >= cap_) return false;
  ++in_use_;
  return true;
}

void StreamSlots::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_use_ > 0) --in_use_;
}

int StreamSlots::InUse() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

}  // namespace reactor
