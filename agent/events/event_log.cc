#include "agent/events/event_log.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "agent/store/keys.h"

namespace reactor {

namespace {

const char* kAgentLog = "_agent";

uint64_t SeqFromKey(const std::string& key) {
  auto slash = key.rfind('/');
  return std::strtoull(key.c_str() + slash + 1, nullptr, 10);
}

Event ParseEvent(const KeyValue& kv) {
  Event e;
  e.seq = SeqFromKey(kv.key);
  auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (j.is_object()) {
    e.time_ms = j.value("time", int64_t{0});
    e.kind = j.value("kind", "");
    e.message = j.value("message", "");
  }
  return e;
}

}  // namespace

EventLog::EventLog(Store& store, Clock& clock, size_t retain) : store_(store), clock_(clock), retain_(retain) {}

void EventLog::Record(const std::string& endpoint, const std::string& kind, const std::string& message) {
  const std::string& log = endpoint.empty() ? std::string(kAgentLog) : endpoint;
  spdlog::info("[{}] {}: {}", log, kind, message);
  int64_t now = clock_.WallMillis();
  // Sequence numbers follow the wall clock (so they keep increasing across
  // agent restarts) and stay unique within this process.
  uint64_t seq = static_cast<uint64_t>(now) * 1000;
  uint64_t prev = last_seq_.load();
  while (true) {
    uint64_t next = seq > prev ? seq : prev + 1;
    if (last_seq_.compare_exchange_weak(prev, next)) {
      seq = next;
      break;
    }
  }
  nlohmann::json j = {{"time", now}, {"kind", kind}, {"message", message}};
  auto st = store_.Put(EventKey(log, seq), j.dump());
  if (!st.ok()) spdlog::warn("event log: cannot record event for {}: {}", log, st.status().ToString());
}

Result<std::vector<Event>> EventLog::Read(const std::string& endpoint, uint64_t after, size_t limit) {
  auto kvs = store_.GetPrefix(EventPrefix(endpoint.empty() ? kAgentLog : endpoint));
  if (!kvs.ok()) return kvs.status();
  std::vector<Event> out;
  for (const auto& kv : *kvs) {
    if (SeqFromKey(kv.key) <= after) continue;
    out.push_back(ParseEvent(kv));
    if (out.size() >= limit) break;
  }
  return out;
}

Result<std::vector<Event>> EventLog::Follow(const std::string& endpoint, uint64_t after, Duration wait) {
  const std::string prefix = EventPrefix(endpoint.empty() ? kAgentLog : endpoint);
  int64_t rev = 0;
  auto first = store_.GetPrefix(prefix, &rev);
  if (!first.ok()) return first.status();
  TimePoint deadline = clock_.Now() + wait;
  while (true) {
    auto events = Read(endpoint, after);
    if (!events.ok() || !events->empty()) return events;
    Duration left = std::chrono::duration_cast<Duration>(deadline - clock_.Now());
    if (left.count() <= 0) return events;
    auto w = store_.Watch(prefix, rev, left);
    if (!w.ok()) return w.status();
    rev = w->revision;
  }
}

Status EventLog::Trim(const std::string& endpoint) {
  auto kvs = store_.GetPrefix(EventPrefix(endpoint.empty() ? kAgentLog : endpoint));
  if (!kvs.ok()) return kvs.status();
  if (kvs->size() <= retain_) return Status::Ok();
  Txn txn;
  for (size_t i = 0; i + retain_ < kvs->size(); ++i) txn.success.push_back(Op::Delete((*kvs)[i].key));
  return store_.Commit(txn).status();
}

Status EventLog::Remove(const std::string& endpoint) { return store_.DeletePrefix(EventPrefix(endpoint)); }

}  // namespace reactor
