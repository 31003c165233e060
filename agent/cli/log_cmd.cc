// reactor log NAME [--follow]
#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"

namespace reactor::cli {

namespace {

std::string FormatTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms % 1000));
  return out;
}

void PrintEvent(const nlohmann::json& e, bool json) {
  if (json) {
    std::cout << e.dump() << "\n";
  } else {
    std::cout << FormatTime(e["time_ms"].get<int64_t>()) << "  " << e["kind"].get<std::string>() << "  "
              << e["message"].get<std::string>() << "\n";
  }
}

// Reads the event stream (text/event-stream) and prints its log events,
// advancing `after`. Returns when the stream ends.
ApiResponse FollowStream(const ApiClient& api, const std::string& name, bool json, uint64_t* after) {
  std::string buf;
  auto on_data = [&](std::string_view chunk) {
    buf.append(chunk);
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      std::string frame = buf.substr(0, end);
      buf.erase(0, end + 2);
      std::string event, data;
      size_t start = 0;
      while (start < frame.size()) {
        size_t nl = frame.find('\n', start);
        std::string line = frame.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        start = nl == std::string::npos ? frame.size() : nl + 1;
        if (line.rfind("event: ", 0) == 0) event = line.substr(7);
        if (line.rfind("data: ", 0) == 0) data += line.substr(6);
      }
      if (event != "log") continue;
      auto e = nlohmann::json::parse(data, nullptr, false);
      if (!e.is_object() || !e.contains("seq")) continue;
      PrintEvent(e, json);
      *after = std::max(*after, e["seq"].get<uint64_t>());
    }
    std::cout.flush();
    return true;
  };
  return api.Stream("/v1/stream?log=" + UrlEncode(name) + "&after=" + std::to_string(*after), on_data);
}

}  // namespace

void AddLogCommand(CLI::App& app, GlobalOptions& opts) {
  auto* log = app.add_subcommand("log", "an endpoint's event log");
  static std::string name;
  static bool follow = false;
  log->add_option("name", name, "endpoint name (_agent: the agent's own log)")->required();
  log->add_flag("--follow,-f", follow, "keep printing new events (through the agent's event stream)");
  log->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("GET", "/v1/endpoints/" + UrlEncode(name) + "/log?after=0");
    for (const auto& e : j["events"]) PrintEvent(e, opts.json);
    std::cout.flush();
    uint64_t after = j["next"].get<uint64_t>();
    // A stream that ends (the agent restarting) is opened again from the
    // last event printed; an agent that stays unreachable for 30 s, or a
    // refusal (503 beyond the stream cap, 404 after unmanage), ends the
    // command with its message.
    int unreachable_s = 0;
    while (follow) {
      ApiResponse r = FollowStream(api, name, opts.json, &after);
      if (r.status == 0 && ++unreachable_s <= 30) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      if (r.status < 200 || r.status >= 300) api.Fail(r);
      unreachable_s = 0;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

}  // namespace reactor::cli
