#include "agent/runtime/route_watcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <vector>

#include "agent/endpoint/endpoint_parser.h"
#include "agent/store/keys.h"

namespace reactor {

void RouteWatcher::Start() {
  stop_ = false;
  thread_ = std::thread([this] {
    while (!stop_) {
      if (!Step(Duration(500))) {
        for (int i = 0; i < 5 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
}

void RouteWatcher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool RouteWatcher::Step(Duration timeout) {
  if (revision_ < 0) {
    auto rev = store_.Revision();
    if (!rev.ok()) return false;
    revision_ = *rev;
  }
  // A new listen port is a reload once reload_delay has passed: wait no
  // longer than that, then flush.
  if (std::optional<Duration> due = nginx_.UntilFlushDue()) timeout = std::min(timeout, *due);
  auto w = store_.Watch(EndpointPrefix(), revision_, timeout);
  if (!w.ok()) return false;
  if (w->compacted) {
    revision_ = -1;
    return true;
  }
  revision_ = w->revision;
  // The last event of each endpoint decides: the record it carries, or
  // its deletion.
  std::map<std::string, const WatchEvent*> last;
  for (const WatchEvent& e : w->events) {
    const std::string name = e.kv.key.substr(EndpointPrefix().size());
    if (IsValidEndpointName(name)) last[name] = &e;
  }
  std::vector<NginxSync::Change> changes;
  for (const auto& [name, e] : last) {
    NginxSync::Change c;
    c.name = name;
    c.revision = e->kv.mod_revision;
    if (e->type == WatchEvent::Type::kPut) {
      auto rec = registry_.Decode(e->kv);
      if (!rec.ok()) continue;  // the round will apply it
      c.rec = std::move(*rec);
    }
    changes.push_back(std::move(c));
  }
  if (!changes.empty()) {
    Status st = sync_.ApplyChanged(changes);
    if (!st.ok()) spdlog::warn("nginx: {}", st.ToString());
  }
  if (nginx_.UntilFlushDue()) {
    Status st = nginx_.Flush();
    if (!st.ok()) spdlog::warn("nginx flush: {}", st.ToString());
  }
  return true;
}

}  // namespace reactor
