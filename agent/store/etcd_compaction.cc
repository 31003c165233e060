#include "agent/store/etcd_compaction.h"

#include <spdlog/spdlog.h>

#include "agent/common/units.h"
#include "agent/store/etcd_codec.h"
#include "agent/store/keys.h"

namespace reactor {

std::string EtcdCompactionKey() { return kKeyRoot + "etcd/compaction"; }

EtcdCompaction::EtcdCompaction(EtcdConnection& conn, Duration retention) : conn_(conn), retention_(retention) {}

EtcdCompaction::~EtcdCompaction() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EtcdCompaction::Start() { thread_ = std::thread([this] { Run(); }); }

void EtcdCompaction::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (wake_.wait_for(lock, retention_, [this] { return stop_; })) return;
    lock.unlock();
    Tick();
    lock.lock();
  }
}

EtcdCompactionStats EtcdCompaction::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void EtcdCompaction::Failed(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.failures;
  stats_.last_error = why;
  const auto now = std::chrono::steady_clock::now();
  if (!logged_failure_ || now - last_logged_ >= kFailureLogInterval) {
    spdlog::warn("etcd compaction at {} failed ({} failures so far; tried again every {}): {}", conn_.Describe(),
                 stats_.failures, FormatDuration(retention_), why);
    logged_failure_ = true;
    last_logged_ = now;
  }
}

void EtcdCompaction::Succeeded(const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.last_error.clear();
  if (logged_failure_) {
    spdlog::info("etcd compaction at {} works again: {}", conn_.Describe(), what);
    logged_failure_ = false;
  }
}

EtcdCompaction::Outcome EtcdCompaction::Tick() {
  std::lock_guard<std::mutex> tick_lock(tick_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.ticks;
  }
  // A conditional write: never sent twice, so a lost answer is a failed tick
  // (the next one reads the version and goes on).
  auto reply = conn_.Call("/v3/kv/txn", etcd::CompactionClaimRequest(EtcdCompactionKey(), seen_version_, seen_revision_),
                          EtcdConnection::Kind::kWrite, kRetryBudget);
  if (!reply.ok()) {
    Failed("claiming " + EtcdCompactionKey() + ": " + reply.status().message());
    return Outcome::kFailed;
  }
  auto claim = etcd::ParseCompactionClaimResponse(*reply);
  if (!claim.ok()) {
    Failed("claiming " + EtcdCompactionKey() + ": " + claim.status().message());
    return Outcome::kFailed;
  }
  if (!claim->succeeded) {
    seen_version_ = claim->version;
    seen_revision_ = claim->revision;
    Succeeded("another agent's turn");
    return Outcome::kNotMyTurn;
  }
  const int64_t target = seen_revision_;  // seen one period ago
  ++seen_version_;
  seen_revision_ = claim->revision;
  if (target <= 0) {
    Succeeded("first turn");
    return Outcome::kFirstTurn;
  }
  auto compacted = conn_.Call("/v3/kv/compaction", etcd::CompactionRequest(target, /*physical=*/false),
                              EtcdConnection::Kind::kIdempotentWrite, kRetryBudget);
  if (!compacted.ok() && !etcd::IsAlreadyCompacted(compacted.status())) {
    Failed("compacting to revision " + std::to_string(target) + ": " + compacted.status().message());
    return Outcome::kFailed;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.compactions;
    stats_.compacted_revision = target;
  }
  spdlog::debug("etcd compaction at {}: history before revision {} removed", conn_.Describe(), target);
  Succeeded("compacted to revision " + std::to_string(target));
  return Outcome::kCompacted;
}

}  // namespace reactor
