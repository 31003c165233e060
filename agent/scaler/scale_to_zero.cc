#include "agent/scaler/scale_to_zero.h"

#include <algorithm>
#include <map>
#include <string>

namespace reactor {

long WakeTarget(const rules::RuleSet& set, int held, double held_for_s, long min_instances, long max_instances) {
  const long lo = std::max(1L, min_instances);
  if (held <= 0 || max_instances < lo) return 0;
  const std::map<std::string, double> demand = {{"rate", held / std::max(1.0, held_for_s)},
                                                {"active", static_cast<double>(held)}};
  rules::Evaluation ev = rules::Evaluate(set, 1, demand, lo, max_instances);
  return std::clamp(ev.target, lo, max_instances);
}

const char* ZeroPhase(int min_instances, bool running, int instances, int healthy, int target) {
  if (min_instances != 0 || !running) return "";
  if (instances == 0 && target == 0) return "scaled to zero";
  if (healthy == 0 && target >= 1) return "waking";
  return "";
}

}  // namespace reactor
