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

void EtcdCompaction::Start() {
  thread_ = std::thread([this] { Run(); });
}

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

void EtcdCompaction::Record(Outcome outcome, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.ticks;  // with the outcome, so a snapshot of stats_ always adds up
  switch (outcome) {
    case Outcome::kNotMyTurn: ++stats_.others_turns; break;
    case Outcome::kFirstTurn: ++stats_.turns; break;
    case Outcome::kCompacted:
      ++stats_.turns;
      ++stats_.compactions;
      break;
    case Outcome::kFailed: break;
  }
  if (outcome != Outcome::kFailed) {
    stats_.last_error.clear();
    if (logged_failure_) {
      spdlog::info("etcd compaction at {} works again", conn_.Describe());
      logged_failure_ = false;
    }
    return;
  }
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

EtcdCompaction::Outcome EtcdCompaction::Tick() {
  std::lock_guard<std::mutex> tick_lock(tick_mu_);
  // A conditional write: never sent twice, so a lost answer is a failed tick
  // (the next one reads the version and goes on).
  auto reply =
      conn_.Call("/v3/kv/txn", etcd::CompactionClaimRequest(EtcdCompactionKey(), seen_version_, seen_revision_),
                 EtcdConnection::Kind::kWrite, kRetryBudget);
  Result<etcd::CompactionClaim> claim =
      reply.ok() ? etcd::ParseCompactionClaimResponse(*reply) : Result<etcd::CompactionClaim>(reply.status());
  if (!claim.ok()) {
    Record(Outcome::kFailed, "claiming " + EtcdCompactionKey() + ": " + claim.status().message());
    return Outcome::kFailed;
  }
  if (!claim->succeeded) {
    seen_version_ = claim->version;
    seen_revision_ = claim->revision;
    Record(Outcome::kNotMyTurn, "");
    return Outcome::kNotMyTurn;
  }
  const int64_t target = seen_revision_;  // seen one period ago
  ++seen_version_;
  seen_revision_ = claim->revision;
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stop_;
  }
  if (target <= 0 || stopping) {  // stopping: the next period's winner compacts
    Record(Outcome::kFirstTurn, "");
    return Outcome::kFirstTurn;
  }
  auto compacted = conn_.Call("/v3/kv/compaction", etcd::CompactionRequest(target, /*physical=*/false),
                              EtcdConnection::Kind::kIdempotentWrite, kRetryBudget);
  if (!compacted.ok() && !etcd::IsAlreadyCompacted(compacted.status())) {
    Record(Outcome::kFailed, "compacting to revision " + std::to_string(target) + ": " + compacted.status().message());
    return Outcome::kFailed;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.compacted_revision = target;
  }
  spdlog::debug("etcd compaction at {}: history before revision {} removed", conn_.Describe(), target);
  Record(Outcome::kCompacted, "");
  return Outcome::kCompacted;
}

}  // namespace reactor
