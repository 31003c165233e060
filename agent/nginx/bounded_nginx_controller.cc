#include "agent/nginx/bounded_nginx_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/common/units.h"

namespace reactor {

using std::chrono::steady_clock;

BoundedNginxController::BoundedNginxController(NginxController& base, Options options)
    : base_(base), options_(options), worker_([this] { WorkLoop(); }) {}

BoundedNginxController::BoundedNginxController(std::unique_ptr<NginxController> base, Options options)
    : owned_(std::move(base)), base_(*owned_), options_(options), worker_([this] { WorkLoop(); }) {}

BoundedNginxController::~BoundedNginxController() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = true;
    cv_.notify_all();
  }
  worker_.join();
}

void BoundedNginxController::WorkLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return exit_ || !queue_.empty(); });
    if (exit_) return;
    std::shared_ptr<Call> call = queue_.front();
    queue_.pop_front();
    std::function<Status()> run = std::move(call->run);
    busy_since_ = steady_clock::now();
    lock.unlock();
    Status result = run();
    lock.lock();
    busy_since_.reset();
    call->done = true;
    call->result = result;
    if (call->abandoned && !result.ok()) {
      spdlog::warn("nginx: {} failed after its caller stopped waiting: {}", call->key, result.ToString());
    }
    cv_.notify_all();
  }
}

Status BoundedNginxController::Submit(const std::string& key, std::function<Status()> run) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const auto& c) { return c->key == key; });
  std::shared_ptr<Call> call;
  if (queued != queue_.end()) {
    call = *queued;
    call->run = std::move(run);  // latest wins: the older arguments were never sent
  } else {
    call = std::make_shared<Call>();
    call->key = key;
    call->run = std::move(run);
    queue_.push_back(call);
    cv_.notify_all();
  }
  call->abandoned = false;

  const steady_clock::time_point start = steady_clock::now();
  if (start - window_start_ >= options_.window) {
    window_start_ = start;
    waited_ = {};
  }
  const steady_clock::duration budget = options_.budget;
  const steady_clock::time_point deadline = start + std::max(budget - waited_, steady_clock::duration::zero());
  // Until done, the deadline, or the call in flight (this one or another)
  // runs past the budget: a hung controller is not waited on again.
  while (!call->done) {
    steady_clock::time_point until = deadline;
    if (busy_since_) until = std::min(until, *busy_since_ + budget);
    if (steady_clock::now() >= until) break;
    cv_.wait_until(lock, until);
  }
  const steady_clock::time_point end = steady_clock::now();
  waited_ += end - start;
  if (call->done) return call->result;
  call->abandoned = true;
  std::string why = "nginx controller did not answer";
  if (busy_since_) {
    why += " (a call has run for " + FormatDuration(std::chrono::duration_cast<Duration>(end - *busy_since_)) + ")";
  }
  return Status::Unavailable(why + "; " + key + " is queued and made once it answers");
}

Status BoundedNginxController::ApplySites(const std::vector<EndpointConfig>& endpoints) {
  return Submit("ApplySites", [this, endpoints] { return base_.ApplySites(endpoints); });
}

Status BoundedNginxController::SetMembers(const std::string& endpoint, const std::vector<Member>& members) {
  return Submit("SetMembers " + endpoint, [this, endpoint, members] { return base_.SetMembers(endpoint, members); });
}

Status BoundedNginxController::Flush() {
  return Submit("Flush", [this] { return base_.Flush(); });
}

Status BoundedNginxController::Supervise() {
  return Submit("Supervise", [this] { return base_.Supervise(); });
}

std::optional<Duration> BoundedNginxController::UntilFlushDue() const {
  Status answered = Submit("UntilFlushDue", [this] {
    std::optional<Duration> due = base_.UntilFlushDue();
    std::lock_guard<std::mutex> lock(mu_);
    until_flush_due_ = due;
    return Status::Ok();
  });
  // Not a stale "due now": the loop would spin while nothing can be flushed.
  if (!answered.ok()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  return until_flush_due_;
}

int BoundedNginxController::ReloadCount() const {
  (void)Submit("ReloadCount", [this] {
    int n = base_.ReloadCount();
    std::lock_guard<std::mutex> lock(mu_);
    reload_count_ = n;
    return Status::Ok();
  });
  std::lock_guard<std::mutex> lock(mu_);
  return reload_count_;
}

std::map<std::string, std::string> BoundedNginxController::HeldBack() const {
  (void)Submit("HeldBack", [this] {
    std::map<std::string, std::string> held = base_.HeldBack();
    std::lock_guard<std::mutex> lock(mu_);
    held_back_ = std::move(held);
    return Status::Ok();
  });
  std::lock_guard<std::mutex> lock(mu_);
  return held_back_;
}

}  // namespace reactor
