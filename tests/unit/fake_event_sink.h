// An EventSink that keeps every event in memory for tests to inspect.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "agent/common/event_sink.h"

namespace reactor {

class FakeEventSink : public EventSink {
 public:
  struct Event {
    std::string endpoint;
    std::string kind;
    std::string message;
  };

  void Record(const std::string& endpoint, const std::string& kind, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({endpoint, kind, message});
  }

  std::vector<Event> Events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  /// How many events of `kind` were recorded.
  int Count(const std::string& kind) const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const Event& e : events_) n += e.kind == kind ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

}  // namespace reactor
