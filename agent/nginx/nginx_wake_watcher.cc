#include "agent/nginx/nginx_wake_watcher.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "agent/nginx/nginx_control_client.h"

namespace reactor {
namespace {

constexpr Duration kReportTimeout{250};
constexpr Duration kPollSlack{2000};  // beyond the wait a long poll asks for

}  // namespace

NginxWakeWatcher::NginxWakeWatcher(Options options, OnHolds on_holds)
    : options_(std::move(options)), on_holds_(std::move(on_holds)) {}

NginxWakeWatcher::~NginxWakeWatcher() { Stop(); }

void NginxWakeWatcher::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "reactor-wakes");
    Loop();
  });
}

void NginxWakeWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<HoldReport> NginxWakeWatcher::Report() const {
  Result<std::string> body = GetControl(options_.control_socket, "/holds", kReportTimeout);
  if (!body.ok()) return body.status();
  return ParseHoldReport(body.value());
}

void NginxWakeWatcher::Loop() {
  std::string last_error;
  while (!stop_) {
    if (PollOnce()) {
      last_error.clear();
      continue;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, options_.retry, [this] { return stop_.load(); });
  }
}

bool NginxWakeWatcher::PollOnce() {
  // Without a sequence (start, or nginx restarted) nginx answers at once
  // with every endpoint holding now; with one, once a newer notice exists.
  const Duration wait = open_.empty() ? options_.idle_wait : options_.open_poll;
  const std::string path =
      synced_ ? "/wakes?since=" + std::to_string(seq_) + "&wait=" + std::to_string(wait.count()) : "/wakes";
  Result<std::string> body = GetControl(options_.control_socket, path, wait + kPollSlack, &stop_);
  if (!body.ok()) {
    if (!stop_) spdlog::debug("nginx wakes: {}", body.status().ToString());
    synced_ = false;
    return false;
  }
  Result<WakeNotices> notices = ParseWakeNotices(body.value());
  if (!notices.ok()) {
    spdlog::warn("nginx wakes: {}", notices.status().ToString());
    synced_ = false;
    return false;
  }
  if (synced_ && notices->seq < seq_) {
    synced_ = false;  // a fresh nginx (its dict restarted): read what it holds
    return true;
  }
  const bool was_synced = synced_;
  seq_ = notices->seq;
  synced_ = true;

  std::map<std::string, HeldRequests> now;
  for (const HeldRequests& h : notices->endpoints) now[h.endpoint] = h;
  // Holds that had no notice this time: their counts now (0 once over).
  bool need_report = !was_synced && !open_.empty();
  for (const auto& [name, h] : open_) need_report = need_report || !now.count(name);
  if (need_report) {
    Result<HoldReport> report = Report();
    if (!report.ok()) {
      synced_ = false;
      return false;
    }
    for (const auto& [name, h] : open_) {
      if (now.count(name)) continue;
      auto it = report->endpoints.find(name);
      HeldRequests cur = h;
      cur.held = it == report->endpoints.end() ? 0 : it->second.held;
      now[name] = cur;
    }
  }
  std::vector<HeldRequests> changed;
  for (auto& [name, h] : now) {
    auto it = open_.find(name);
    const int before = it == open_.end() ? 0 : it->second.held;
    if (h.held > 0) {
      if (it != open_.end() && h.since_ms == 0) h.since_ms = it->second.since_ms;
      open_[name] = h;
    } else {
      open_.erase(name);
    }
    if (h.held != before) changed.push_back(h);
  }
  if (!changed.empty() || !open_.empty()) on_holds_(changed, !open_.empty());
  return true;
}

}  // namespace reactor
