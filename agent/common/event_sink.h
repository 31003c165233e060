// Where components report what they did and why. The agent's implementation
// appends to the endpoint's event log in the store (`reactor log NAME`).
#pragma once

#include <string>

namespace reactor {

class EventSink {
 public:
  virtual ~EventSink() = default;
  /// `endpoint` may be empty for agent-wide events. `kind` is a short word
  /// ("launch", "reload", "health", "scale", "error"); `message` says why.
  /// Thread-safe.
  virtual void Record(const std::string& endpoint, const std::string& kind, const std::string& message) = 0;
};

}  // namespace reactor
