// The state machine of one backend's probe connection, without sockets or
// time: the prober (health_checker.cc) turns socket events into calls here
// and carries out the returned Action, so every path — connect, keep-alive
// reuse, a stale kept-alive connection, close after each response, timeout —
// is unit-tested without the kernel.
//
// HTTP checks keep one persistent connection per backend: `GET path
// HTTP/1.1` with keep-alive, the response parsed by HttpResponseParser, the
// connection kept for the next check unless the server closes it. A check
// that finds its kept-alive connection closed before any byte of the answer
// (the server's idle timeout raced the request) retries once on a fresh
// connection within the same timeout, as browsers and curl do. TCP checks
// connect and close.
#pragma once

#include <cstddef>
#include <string>

#include "agent/health/http_response_parser.h"

namespace reactor {

enum class ProbeKind { kHttp, kTcp };

class ProbeSession {
 public:
  enum class State {
    kClosed,            // no socket
    kConnecting,        // a non-blocking connect is under way, for a check
    kAwaitingResponse,  // the request is sent; reading the response
    kIdle,              // HTTP: connected, between checks
  };

  struct Action {
    enum What {
      kNothing,    // wait for the next event
      kConnect,    // open a socket and connect (there is none)
      kSend,       // send the request on the connected socket
      kClose,      // close the socket
      kReconnect,  // close the socket, then open a new one and connect
    };
    What what = kNothing;
    /// The check is over: `ok` and `result` ("HTTP 200", "TCP connect ok",
    /// "connection refused", "timeout after 1000ms", ...) are its outcome.
    bool finished = false;
    bool ok = false;
    std::string result;
  };

  State state() const { return state_; }
  /// True while a check is running (started and not finished).
  bool checking() const { return checking_; }

  /// A check starts. REQUIRES: !checking().
  Action Begin(ProbeKind kind);
  /// The connect finished: `error` 0 or an errno value. REQUIRES: kConnecting.
  Action Connected(int error);
  /// Bytes arrived on the connection.
  Action Received(const char* data, size_t size);
  /// The peer closed the connection (`error` 0: an orderly close; else the
  /// errno of the failed read or send, e.g. ECONNRESET).
  Action PeerClosed(int error);
  /// The check's timeout passed before it finished.
  Action TimedOut(long timeout_ms);
  /// The prober dropped the connection itself (the target went away, or the
  /// prober stops): forgets it and any running check.
  void Abandon();

 private:
  Action Finish(bool ok, std::string result, Action::What what);

  State state_ = State::kClosed;
  ProbeKind kind_ = ProbeKind::kHttp;
  bool checking_ = false;
  bool reused_ = false;  // this check's request went on a kept-alive connection
  HttpResponseParser parser_;
};

/// The text for a failed connect, read or send ("connection refused",
/// "connection reset", else strerror).
std::string DescribeSocketError(int error);

}  // namespace reactor
