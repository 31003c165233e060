#include "agent/scaler/hpa_recommender.h"

#include <algorithm>
#include <cmath>

namespace reactor {

std::optional<double> HpaTarget(const rules::Rule& rule) {
  if (rule.metric == "instances" || !rule.upper || *rule.upper <= 0) return std::nullopt;
  const double lower = rule.lower && *rule.lower > 0 ? *rule.lower : 0.0;
  const double target = (lower + *rule.upper) / 2;
  return target > 0 ? std::optional<double>(target) : std::nullopt;
}

long HpaDesiredForMetric(long current, long ready, double total, double target) {
  constexpr double tol = HpaDefaults::kTolerance;
  const double ratio = total / ready / target;  // over the instances that report the metric
  if (std::fabs(ratio - 1.0) <= tol) return current;
  const long missing = current - ready;
  if (missing <= 0) return static_cast<long>(std::ceil(ratio * ready - 1e-9));
  // Instances still starting: 0 % of the target for a scale-up, 100 % for
  // a scale-down; no change if that reverses the direction or lands
  // within the tolerance.
  const double assumed = ratio > 1.0 ? 0.0 : target * missing;
  const double again = (total + assumed) / current / target;
  if (std::fabs(again - 1.0) <= tol || (ratio > 1.0) != (again > 1.0)) return current;
  return static_cast<long>(std::ceil(again * current - 1e-9));
}

HpaRecommender::Result HpaRecommender::Next(TimePoint now, long current, long desired, bool allow_down, long min,
                                            long max) {
  Result r;
  if (last_sync_ && now - *last_sync_ < HpaDefaults::kSyncPeriod) {
    r.replicas = replicas_;
    r.recommended = recommended_;
    r.held = held_;
    return r;
  }
  last_sync_ = now;
  r.synced = true;
  if (!allow_down) desired = std::max(desired, current);
  recommended_ = desired;

  // Stabilisation: scaleUp window 0 (the recommendation itself), scaleDown
  // the highest recommendation of the last 300 s, this one included.
  recommendations_.emplace_back(now, desired);
  while (!recommendations_.empty() && now - recommendations_.front().first > HpaDefaults::kScaleDownStabilisation) {
    recommendations_.pop_front();
  }
  long down = desired;
  for (const auto& [t, v] : recommendations_) down = std::max(down, v);
  long stabilised = current;
  if (stabilised < desired) stabilised = desired;
  if (stabilised > down) stabilised = down;

  // Rate limit: from the replicas at the start of the period (current less
  // what this period added), + max(4 pods, 100 %); scale-down 100 %: none.
  while (!scale_ups_.empty() && now - scale_ups_.front().first >= HpaDefaults::kRatePeriod) scale_ups_.pop_front();
  long added = 0;
  for (const auto& [t, n] : scale_ups_) added += n;
  const long start = std::max(0L, current - added);
  const long up_limit = std::max(start + HpaDefaults::kScaleUpPods, start + start * HpaDefaults::kScaleUpPercent / 100);
  long replicas = stabilised;
  if (replicas > up_limit) {
    replicas = up_limit;
    r.rate_limited = true;
  }
  replicas = std::clamp(replicas, min, std::max(min, max));
  if (replicas > current) scale_ups_.emplace_back(now, replicas - current);

  replicas_ = replicas;
  held_ = replicas > desired && desired < current;
  r.replicas = replicas;
  r.recommended = desired;
  r.held = held_;
  return r;
}

}  // namespace reactor
