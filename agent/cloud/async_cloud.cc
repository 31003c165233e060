#include "agent/cloud/async_cloud.h"

#include <set>

namespace reactor {

namespace {
// A failed launch is reported this long at most, in case nobody stops it.
constexpr Duration kFailureKept{10 * 60 * 1000};
// The poller rests when nobody has listed for this long.
constexpr Duration kIdleAfter{5000};
}  // namespace

AsyncCloud::AsyncCloud(Cloud& base, std::string manager, Clock& clock, Duration poll_interval)
    : base_(base), manager_(std::move(manager)), clock_(clock), poll_interval_(poll_interval) {
  poll_thread_ = std::thread([this] { PollLoop(); });
  launch_thread_ = std::thread([this] { LaunchLoop(); });
}

AsyncCloud::~AsyncCloud() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = true;
  }
  cv_.notify_all();
  poll_thread_.join();
  launch_thread_.join();
}

void AsyncCloud::PollLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!exit_) {
    // Only a cloud somebody lists is polled (a host without dockerd is fine
    // while no endpoint uses docker).
    if (!asked_ || clock_.Now() - last_asked_ > kIdleAfter) {
      cv_.wait(lock, [this] { return exit_ || (asked_ && clock_.Now() - last_asked_ <= kIdleAfter); });
      if (exit_) return;
    }
    uint64_t generation = listing_generation_;
    lock.unlock();
    auto listed = base_.List(manager_);
    lock.lock();
    listing_ = std::move(listed);
    listing_generation_ = generation + 1;
    cv_.notify_all();
    cv_.wait_for(lock, poll_interval_, [this] { return exit_; });
  }
}

void AsyncCloud::LaunchLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return exit_ || !queue_.empty(); });
    if (exit_) return;
    PendingLaunch* p = queue_.front();
    queue_.pop_front();
    LaunchRequest req;
    req.instance_id = p->instance_id;
    req.manager = p->manager;
    req.endpoint = &p->endpoint;  // launches_ keeps *p alive: only Stop erases, and not while queued
    lock.unlock();
    auto result = base_.Launch(req);
    lock.lock();
    p->result = std::move(result);
    p->done = true;
    p->done_at_listing = listing_generation_;
    p->finished = clock_.Now();
  }
}

Result<InstanceInfo> AsyncCloud::Launch(const LaunchRequest& req) {
  if (req.endpoint == nullptr) return Status::InvalidArgument("launch without an endpoint");
  std::lock_guard<std::mutex> lock(mu_);
  if (exit_) return Status::Unavailable(std::string(base_.Name()) + " cloud is shutting down");
  if (launches_.count(req.instance_id)) return Status::Conflict("instance " + req.instance_id + " exists");
  auto p = std::make_unique<PendingLaunch>();
  p->instance_id = req.instance_id;
  p->manager = req.manager;
  p->endpoint = *req.endpoint;
  queue_.push_back(p.get());
  launches_[req.instance_id] = std::move(p);
  cv_.notify_all();
  InstanceInfo info;
  info.instance_id = req.instance_id;
  info.endpoint = req.endpoint->name;
  info.pending = true;
  info.detail = "launching";
  return info;
}

Status AsyncCloud::Stop(const std::string& instance_id, Duration grace) {
  {
    // A launch still queued is cancelled; one in flight is stopped below
    // once the driver has it (its own Stop is OK for what it does not know).
    std::lock_guard<std::mutex> lock(mu_);
    auto it = launches_.find(instance_id);
    if (it != launches_.end()) {
      for (auto q = queue_.begin(); q != queue_.end(); ++q) {
        if (*q == it->second.get()) {
          queue_.erase(q);
          launches_.erase(it);
          return Status::Ok();
        }
      }
    }
  }
  Status st = base_.Stop(instance_id, grace);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = launches_.find(instance_id);
  if (it != launches_.end() && it->second->done) launches_.erase(it);
  return st;
}

Result<std::vector<InstanceInfo>> AsyncCloud::List(const std::string& /*manager*/) {
  std::unique_lock<std::mutex> lock(mu_);
  asked_ = true;
  last_asked_ = clock_.Now();
  cv_.notify_all();
  // The first listing (or the first after a pause) is worth a short wait;
  // a driver that hangs costs the caller this much, never more.
  if (!listing_) cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return listing_.has_value() || exit_; });
  if (!listing_) return Status::Unavailable(std::string(base_.Name()) + " cloud: no answer to its first listing yet");
  if (!listing_->ok()) return listing_->status();
  std::vector<InstanceInfo> out = listing_->value();
  std::set<std::string> listed;
  for (const auto& info : out) listed.insert(info.instance_id);
  const TimePoint now = clock_.Now();
  for (auto it = launches_.begin(); it != launches_.end();) {
    PendingLaunch& p = *it->second;
    // A listing that started after the launch finished is the truth for it.
    bool settled = p.done && listing_generation_ > p.done_at_listing + 1;
    if (p.done && p.result->ok() && settled) {
      it = launches_.erase(it);
      continue;
    }
    if (p.done && !p.result->ok() && now - p.finished > kFailureKept) {
      it = launches_.erase(it);
      continue;
    }
    if (!listed.count(p.instance_id)) {
      InstanceInfo info;
      info.instance_id = p.instance_id;
      info.endpoint = p.endpoint.name;
      if (!p.done) {
        info.pending = true;
        info.detail = "launching";
      } else if (p.result->ok()) {
        info = p.result->value();  // started; the next listings will show it
      } else {
        info.running = false;
        info.detail = "launch failed: " + p.result->status().message();
      }
      out.push_back(std::move(info));
    }
    ++it;
  }
  return out;
}

Result<InstanceInfo> AsyncCloud::Inspect(const std::string& instance_id) { return base_.Inspect(instance_id); }

}  // namespace reactor
