// Status and Result<T>: the one error type that crosses module boundaries.
// Cheap when OK; named constructors say what went wrong. No exceptions leave
// the agent's loop, the API handlers or the tailer: they return a Status.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace reactor {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // bad input from a user: maps to HTTP 400 / exit 2
    kNotFound,         // HTTP 404
    kConflict,         // compare-and-swap lost, name or port taken: HTTP 409
    kUnauthenticated,  // HTTP 401
    kUnavailable,      // a dependency (nginx, docker, etcd) cannot be reached
    kIOError,          // filesystem or socket failure
    kInternal,         // a bug or an unexpected state
    kFencedOut,        // an endpoint owner's fencing compare failed: it owns the endpoint no more
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }
  static Status Unauthenticated(std::string msg) { return Status(Code::kUnauthenticated, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status IOError(const std::string& what, const std::string& why) {
    return Status(Code::kIOError, what + ": " + why);
  }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status FencedOut(std::string msg) { return Status(Code::kFencedOut, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "invalid argument: ...", or "ok".
  std::string ToString() const;

  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsConflict() const { return code_ == Code::kConflict; }
  bool IsFencedOut() const { return code_ == Code::kFencedOut; }

  /// A copy with "context: " put before the message; OK stays OK.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

/// A value or a non-OK Status. REQUIRES: constructed from a non-OK Status
/// when there is no value.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace reactor

#define REACTOR_RETURN_IF_ERROR(expr) \
  do {                                \
    ::reactor::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)
