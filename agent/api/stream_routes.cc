#include "agent/api/stream_routes.h"

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/api/api_server.h"
#include "agent/endpoint/endpoint_parser.h"

namespace reactor {

namespace {

using nlohmann::json;

constexpr const char* kAgentLog = "_agent";
constexpr size_t kMaxSampled = 100;
constexpr Duration kHeartbeat(2000);
constexpr Duration kSampleEvery(1000);

void ReplyError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st);
  res.set_content(ErrorBody(st), "application/json");
}

std::vector<std::string> SplitNames(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string LogFrame(const std::string& log, const Event& e) {
  json j = {{"log", log}, {"seq", e.seq}, {"time_ms", e.time_ms}, {"kind", e.kind}, {"message", e.message}};
  return "event: log\nid: " + std::to_string(e.seq) + "\ndata: " + j.dump() + "\n\n";
}

// One open stream: what it sends and how far it got. Used by one thread
// (the httplib worker that serves the stream).
struct StreamState {
  std::string log;  // "" = no events; "*" = every log
  bool has_after = false;
  uint64_t after = 0;
  std::vector<std::string> sampled;
  bool managers = false;

  bool started = false;
  uint64_t cursor = 0;
  std::map<std::string, uint64_t> last_seq;  // log → newest seq sent
  TimePoint next_sample{};
  TimePoint next_heartbeat{};
};

// Sends `log`'s stored events the stream has not sent yet.
bool SendHistory(const StreamContext& ctx, StreamState& s, const std::string& log, httplib::DataSink& sink) {
  uint64_t& last = s.last_seq[log];
  auto events = ctx.events->Read(log == kAgentLog ? "" : log, last);
  if (!events.ok()) return true;  // the live part still works; history comes back with the store
  for (const auto& e : *events) {
    if (e.seq <= last) continue;
    std::string frame = LogFrame(log, e);
    if (!sink.write(frame.data(), frame.size())) return false;
    last = e.seq;
  }
  return true;
}

bool Pump(const StreamContext& ctx, StreamState& s, httplib::DataSink& sink) {
  const bool sampling = !s.sampled.empty() || s.managers;
  if (!s.started) {
    s.started = true;
    std::string hello = "retry: 2000\n: reactor event stream\n\n";
    if (!sink.write(hello.data(), hello.size())) return false;
    if (!s.log.empty() && s.log != "*") {
      s.last_seq[s.log] = s.after;
      if (s.has_after && !SendHistory(ctx, s, s.log, sink)) return false;
    }
    s.next_heartbeat = ctx.clock->Now() + kHeartbeat;
    s.next_sample = ctx.clock->Now();
  }
  TimePoint now = ctx.clock->Now();
  TimePoint due = s.next_heartbeat;
  if (sampling) due = std::min(due, s.next_sample);
  Duration wait = std::max(Duration(0), std::chrono::duration_cast<Duration>(due - now));
  EventHub::Batch batch = ctx.hub->Next(s.cursor, s.log.empty() ? std::min(wait, Duration(500)) : wait);
  if (batch.stopped) return false;
  s.cursor = batch.cursor;
  if (!s.log.empty()) {
    if (batch.gap && s.log != "*" && !SendHistory(ctx, s, s.log, sink)) return false;
    for (const auto& he : batch.events) {
      if (s.log != "*" && he.log != s.log) continue;
      uint64_t& last = s.last_seq[he.log];
      if (he.event.seq <= last) continue;
      std::string frame = LogFrame(he.log, he.event);
      if (!sink.write(frame.data(), frame.size())) return false;
      last = he.event.seq;
    }
  }
  now = ctx.clock->Now();
  if (sampling && now >= s.next_sample) {
    json j = {{"time_ms", ctx.clock->WallMillis()}};
    j["endpoints"] = s.sampled.empty() ? json::object() : ctx.telemetry->Sample(s.sampled);
    if (s.managers) j["managers"] = ctx.telemetry->Managers();
    std::string frame = "event: sample\ndata: " + j.dump() + "\n\n";
    if (!sink.write(frame.data(), frame.size())) return false;
    // Keep the beat: the next sample a second after this one was due.
    s.next_sample += kSampleEvery;
    if (s.next_sample <= now) s.next_sample = now + kSampleEvery;
  }
  if (now >= s.next_heartbeat) {
    static const std::string beat = ": beat\n\n";
    if (!sink.write(beat.data(), beat.size())) return false;
    s.next_heartbeat = now + kHeartbeat;
  }
  return true;
}

}  // namespace

void RegisterStreamRoutes(httplib::Server& server, StreamContext ctx) {
  server.Get("/v1/stream", [ctx](const httplib::Request& req, httplib::Response& res) {
    auto state = std::make_shared<StreamState>();
    if (req.has_param("log")) {
      state->log = req.get_param_value("log");
      if (state->log != "*" && state->log != kAgentLog) {
        if (!IsValidEndpointName(state->log)) {
          return ReplyError(res,
                            Status::InvalidArgument("log: '" + state->log + "' is not an endpoint name, _agent or *"));
        }
        auto rec = ctx.registry->Get(state->log);
        if (!rec.ok()) return ReplyError(res, rec.status());
      }
    }
    if (req.has_param("after")) {
      const std::string a = req.get_param_value("after");
      char* end = nullptr;
      state->after = std::strtoull(a.c_str(), &end, 10);
      if (a.empty() || *end != '\0')
        return ReplyError(res, Status::InvalidArgument("after: '" + a + "' is not a number"));
      state->has_after = true;
    }
    if (req.has_param("sample")) {
      std::set<std::string> seen;
      for (const std::string& n : SplitNames(req.get_param_value("sample"))) {
        if (!IsValidEndpointName(n))
          return ReplyError(res, Status::InvalidArgument("sample: '" + n + "' is not an endpoint name"));
        if (seen.insert(n).second) state->sampled.push_back(n);
      }
      if (state->sampled.size() > kMaxSampled) {
        return ReplyError(
            res, Status::InvalidArgument("sample: at most " + std::to_string(kMaxSampled) + " endpoints per stream"));
      }
    }
    state->managers = req.has_param("managers") && req.get_param_value("managers") == "1";
    if ((!state->sampled.empty() || state->managers) && ctx.telemetry == nullptr) {
      return ReplyError(res, Status::InvalidArgument("sample: this agent has no telemetry"));
    }
    if (state->log.empty() && state->sampled.empty() && !state->managers) {
      return ReplyError(res, Status::InvalidArgument("give log=NAME, sample=NAME,... or managers=1"));
    }
    if (!ctx.slots->TryAcquire()) {
      res.set_header("Retry-After", "5");
      return ReplyError(res, Status::Unavailable("too many open event streams: " + std::to_string(ctx.slots->cap()) +
                                                 " (the cap) are open; try again later"));
    }
    state->cursor = ctx.hub->Cursor();
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    StreamSlots* slots = ctx.slots;
    res.set_chunked_content_provider(
        "text/event-stream", [ctx, state](size_t, httplib::DataSink& sink) { return Pump(ctx, *state, sink); },
        [slots](bool) { slots->Release(); });
  });
}

Result<std::vector<Event>> FollowLog(const StreamContext& ctx, const std::string& log, uint64_t after, Duration wait) {
  const std::string name = log.empty() ? kAgentLog : log;
  uint64_t cursor = ctx.hub->Cursor();
  const TimePoint deadline = ctx.clock->Now() + wait;
  while (true) {
    auto events = ctx.events->Read(log, after);
    if (!events.ok() || !events->empty()) return events;
    bool arrived = false;
    while (!arrived) {
      Duration left = std::chrono::duration_cast<Duration>(deadline - ctx.clock->Now());
      if (left.count() <= 0) return events;
      EventHub::Batch b = ctx.hub->Next(cursor, left);
      if (b.stopped) return events;
      cursor = b.cursor;
      arrived = b.gap;
      for (const auto& he : b.events) arrived = arrived || (he.log == name && he.event.seq > after);
    }
  }
}

}  // namespace reactor
