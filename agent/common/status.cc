#include "agent/common/status.h"

namespace reactor {

std::string Status::ToString() const {
  const char* name = "ok";
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: name = "invalid argument"; break;
    case Code::kNotFound: name = "not found"; break;
    case Code::kConflict: name = "conflict"; break;
    case Code::kUnauthenticated: name = "unauthenticated"; break;
    case Code::kUnavailable: name = "unavailable"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kInternal: name = "internal error"; break;
    case Code::kFencedOut: name = "fenced out"; break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace reactor
