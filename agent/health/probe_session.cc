#include "agent/health/probe_session.h"

#include <cerrno>
#include <cstring>

namespace reactor {

std::string DescribeSocketError(int error) {
  switch (error) {
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET:
    case EPIPE: return "connection reset";
    default: return std::strerror(error);
  }
}

ProbeSession::Action ProbeSession::Finish(bool ok, std::string result, Action::What what) {
  checking_ = false;
  if (what == Action::kClose) state_ = State::kClosed;
  Action a;
  a.what = what;
  a.finished = true;
  a.ok = ok;
  a.result = std::move(result);
  return a;
}

ProbeSession::Action ProbeSession::Begin(ProbeKind kind) {
  kind_ = kind;
  checking_ = true;
  reused_ = false;
  Action a;
  if (state_ == State::kIdle && kind == ProbeKind::kHttp) {
    reused_ = true;
    parser_.Reset();
    state_ = State::kAwaitingResponse;
    a.what = Action::kSend;
    return a;
  }
  // A TCP check on a kept-alive HTTP connection (the path was cleared)
  // proves nothing about accepting connections: start over.
  a.what = state_ == State::kClosed ? Action::kConnect : Action::kReconnect;
  state_ = State::kConnecting;
  return a;
}

ProbeSession::Action ProbeSession::Connected(int error) {
  if (state_ != State::kConnecting) return {};
  if (error != 0) return Finish(false, DescribeSocketError(error), Action::kClose);
  if (kind_ == ProbeKind::kTcp) return Finish(true, "TCP connect ok", Action::kClose);
  parser_.Reset();
  state_ = State::kAwaitingResponse;
  Action a;
  a.what = Action::kSend;
  return a;
}

ProbeSession::Action ProbeSession::Received(const char* data, size_t size) {
  if (state_ == State::kIdle) {
    // Nothing was asked: a confused server. The next check reconnects.
    state_ = State::kClosed;
    Action a;
    a.what = Action::kClose;
    return a;
  }
  if (state_ != State::kAwaitingResponse || size == 0) return {};
  switch (parser_.Feed(data, size)) {
    case HttpResponseParser::Progress::kIncomplete: return {};
    case HttpResponseParser::Progress::kError:
      return Finish(false, std::string("bad HTTP response: ") + parser_.error(), Action::kClose);
    case HttpResponseParser::Progress::kComplete: break;
  }
  const int code = parser_.status();
  const bool keep = parser_.keep_alive();
  if (keep) state_ = State::kIdle;
  return Finish(code >= 200 && code < 400, "HTTP " + std::to_string(code), keep ? Action::kNothing : Action::kClose);
}

ProbeSession::Action ProbeSession::PeerClosed(int error) {
  switch (state_) {
    case State::kClosed: return {};
    case State::kIdle: {
      // The server ended a kept-alive connection between checks (its idle
      // timeout, a restart): nothing is wrong yet; the next check reconnects.
      state_ = State::kClosed;
      Action a;
      a.what = Action::kClose;
      return a;
    }
    case State::kConnecting:
      return Finish(false, DescribeSocketError(error != 0 ? error : ECONNREFUSED), Action::kClose);
    case State::kAwaitingResponse: break;
  }
  if (!parser_.started()) {
    if (reused_) {
      // The kept-alive connection was already closing when the request went
      // out: no answer was refused, so one fresh connection decides.
      reused_ = false;
      state_ = State::kConnecting;
      Action a;
      a.what = Action::kReconnect;
      return a;
    }
    return Finish(false, error != 0 ? DescribeSocketError(error) : "empty reply", Action::kClose);
  }
  if (error == 0 && parser_.FeedEof() == HttpResponseParser::Progress::kComplete) {
    const int code = parser_.status();
    return Finish(code >= 200 && code < 400, "HTTP " + std::to_string(code), Action::kClose);
  }
  return Finish(false, error != 0 ? DescribeSocketError(error) : "connection closed in the middle of the response",
                Action::kClose);
}

ProbeSession::Action ProbeSession::TimedOut(long timeout_ms) {
  if (!checking_) return {};
  // A late answer must not be taken for the next check's: drop the connection.
  return Finish(false, "timeout after " + std::to_string(timeout_ms) + "ms", Action::kClose);
}

void ProbeSession::Abandon() {
  state_ = State::kClosed;
  checking_ = false;
  reused_ = false;
}

}  // namespace reactor
