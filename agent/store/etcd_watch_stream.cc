#include "agent/store/etcd_watch_stream.h"

#include <algorithm>

namespace reactor {

EtcdWatchBuffer::Next EtcdWatchBuffer::Feed(const etcd::WatchMessage& m, std::string* why) {
  if (m.error) {
    *why = "watch stream error: " + m.error->message;
    return Next::kReconnect;
  }
  if (m.canceled) {
    if (m.compact_revision > 0) {
      compact_revision_ = m.compact_revision;
      return Next::kCompacted;
    }
    *why = "watch canceled by etcd" + (m.cancel_reason.empty() ? std::string() : ": " + m.cancel_reason);
    return Next::kReconnect;
  }
  for (const WatchEvent& e : m.events) {
    // A reopened stream starts after last_; anything older is a repeat.
    if (e.kv.mod_revision <= last_) continue;
    events_.push_back(e);
  }
  if (!events_.empty()) last_ = std::max(last_, events_.back().kv.mod_revision);
  return Next::kContinue;
}

std::vector<WatchEvent> EtcdWatchBuffer::Take(int64_t after_revision) {
  while (!events_.empty() && events_.front().kv.mod_revision <= after_revision) events_.pop_front();
  base_ = std::max(base_, after_revision);
  return std::vector<WatchEvent>(events_.begin(), events_.end());
}

EtcdWatchStream::EtcdWatchStream(EtcdConnection& conn, std::string prefix, int64_t after_revision)
    : conn_(conn),
      prefix_(std::move(prefix)),
      buffer_(after_revision),
      last_used_(std::chrono::steady_clock::now()),
      thread_([this] { Run(); }) {}

EtcdWatchStream::~EtcdWatchStream() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void EtcdWatchStream::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
}

std::chrono::steady_clock::time_point EtcdWatchStream::last_used() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_used_;
}

bool EtcdWatchStream::Covers(int64_t after_revision) {
  std::lock_guard<std::mutex> lock(mu_);
  return buffer_.Covers(after_revision);
}

EtcdWatchStream::Waited EtcdWatchStream::Wait(int64_t after_revision, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  last_used_ = std::chrono::steady_clock::now();
  Waited out;
  while (true) {
    out.events = buffer_.Take(after_revision);
    if (!out.events.empty() || buffer_.compacted() || stop_) break;
    // A stream that has not been established yet may hold events from
    // history it has not received: give it at least until it connects.
    if (std::chrono::steady_clock::now() >= deadline && (ever_connected_ || !error_.empty())) break;
    if (std::chrono::steady_clock::now() >= deadline + std::chrono::seconds(2)) break;
    changed_.wait_until(lock, ever_connected_ ? deadline : deadline + std::chrono::seconds(2));
  }
  out.compacted = buffer_.compacted();
  out.compact_revision = buffer_.compact_revision();
  out.connected = connected_;
  out.error = error_;
  return out;
}

void EtcdWatchStream::Run() {
  const EtcdOptions& options = conn_.options();
  Duration backoff = options.backoff_initial;
  while (!stop_) {
    auto token = conn_.Token();
    const std::string member = conn_.CurrentMember();
    std::string why;
    bool compacted = false;
    if (token.ok()) {
      int64_t after = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        after = buffer_.last_revision();
      }
      EtcdHttpRequest request{member + "/v3/watch", etcd::WatchCreateRequest(prefix_, after), *token,
                              options.request_timeout};
      std::string stream_error;
      auto on_line = [&](const std::string& line) {
        auto m = etcd::ParseWatchLine(line);
        if (!m.ok()) {
          stream_error = m.status().message();
          return false;
        }
        if (m->error && m->error->grpc_code == 16) conn_.TokenRejected(*token);
        std::lock_guard<std::mutex> lock(mu_);
        if (m->created) {
          connected_ = true;
          ever_connected_ = true;
          error_.clear();
          backoff = options.backoff_initial;
        }
        EtcdWatchBuffer::Next next = buffer_.Feed(*m, &stream_error);
        changed_.notify_all();
        if (next == EtcdWatchBuffer::Next::kCompacted) {
          compacted = true;
          return false;
        }
        return next == EtcdWatchBuffer::Next::kContinue;
      };
      EtcdHttpReply reply = conn_.http().Stream(request, on_line, stop_);
      if (!stream_error.empty()) {
        why = member + ": " + stream_error;
      } else if (!reply.transport_error.empty()) {
        why = reply.transport_error;
      } else if (reply.status != 200) {
        auto e = etcd::ParseGatewayError(reply.body);
        why = member + ": HTTP " + std::to_string(reply.status) + (e ? " " + e->message : "");
        if (e && e->grpc_code == 16) conn_.TokenRejected(*token);
      } else {
        why = member + ": the watch stream ended";
      }
    } else {
      why = token.status().message();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      connected_ = false;
      if (!stop_ && !compacted) error_ = why;
    }
    changed_.notify_all();
    if (stop_ || compacted) return;
    conn_.MemberFailed(member);
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, backoff, [this] { return stop_.load(); });
    backoff = std::min(backoff * 2, options.backoff_max);
  }
}

}  // namespace reactor
