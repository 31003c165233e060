#include "agent/events/event_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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
  if (!j.is_object()) return e;
  try {
    e.time_ms = j.value("time", int64_t{0});
    e.kind = j.value("kind", "");
    e.message = j.value("message", "");
  } catch (const nlohmann::json::exception&) {
    e.kind = "unreadable";  // a field of the wrong type; shown, never thrown
  }
  return e;
}

}  // namespace

EventLog::EventLog(Store& store, Clock& clock, size_t retain) : store_(store), clock_(clock), retain_(retain) {}

uint64_t EventLog::NextSeq(const std::string& log, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = newest_.find(log);
  if (it == newest_.end()) {
    // First event of this log in this process: continue after its newest
    // event, so the numbers never go back when the wall clock stepped back
    // across a restart.
    uint64_t newest = 0;
    auto kvs = store_.GetPrefix(EventPrefix(log));
    if (kvs.ok() && !kvs->empty()) newest = SeqFromKey(kvs->back().key);
    it = newest_.emplace(log, newest).first;
  }
  uint64_t seq = std::max<uint64_t>(static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)) * 1000, it->second + 1);
  it->second = seq;
  since_trim_[log]++;
  return seq;
}

void EventLog::Record(const std::string& endpoint, const std::string& kind, const std::string& message) {
  const std::string& log = endpoint.empty() ? std::string(kAgentLog) : endpoint;
  spdlog::info("[{}] {}: {}", log, kind, message);
  int64_t now = clock_.WallMillis();
  nlohmann::json j = {{"time", now}, {"kind", kind}, {"message", message}};
  const std::string value = j.dump();
  // Sequence numbers follow the wall clock and are unique across hosts: the
  // key is created only if absent; another host's event at the same number
  // moves this one to the next.
  uint64_t seq = NextSeq(log, now);
  Status st;
  for (int attempt = 0; attempt < 8; ++attempt) {
    Txn txn;
    txn.compares.push_back(Compare::Absent(EventKey(log, seq)));
    txn.success.push_back(Op::Put(EventKey(log, seq), value));
    auto r = store_.Commit(txn);
    if (!r.ok()) {
      st = r.status();
      break;
    }
    if (r->succeeded) return;
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t& newest = newest_[log];
    newest = std::max(newest, seq) + 1;
    seq = newest;
    st = Status::Conflict("sequence numbers taken");
  }
  spdlog::warn("event log: cannot record event for {}: {}", log, st.ToString());
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
  const std::string log = endpoint.empty() ? std::string(kAgentLog) : endpoint;
  {
    // Read the log only once it may have grown past the limit: at start,
    // then every tenth of the retention's new events.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = since_trim_.find(log);
    if (trimmed_.count(log) && (it == since_trim_.end() || it->second < std::max<size_t>(retain_ / 10, 1))) {
      return Status::Ok();
    }
    trimmed_.insert(log);
    since_trim_[log] = 0;
  }
  auto kvs = store_.GetPrefix(EventPrefix(log));
  if (!kvs.ok()) return kvs.status();
  if (kvs->size() <= retain_) return Status::Ok();
  Txn txn;
  for (size_t i = 0; i + retain_ < kvs->size(); ++i) txn.success.push_back(Op::Delete((*kvs)[i].key));
  return store_.Commit(txn).status();
}

Event DecodeEvent(const KeyValue& kv) { return ParseEvent(kv); }

Status EventLog::Remove(const std::string& endpoint) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    newest_.erase(endpoint);
    since_trim_.erase(endpoint);
    trimmed_.erase(endpoint);
  }
  return store_.DeletePrefix(EventPrefix(endpoint));
}

}  // namespace reactor
