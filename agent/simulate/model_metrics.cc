#include "agent/simulate/model_metrics.h"

#include <algorithm>
#include <cmath>

namespace reactor {

void ModelMetrics::Record(int64_t second, double requests, std::optional<double> response) {
  if (second < 0) return;
  if (static_cast<size_t>(second) >= seconds_.size()) seconds_.resize(static_cast<size_t>(second) + 1);
  Second& s = seconds_[static_cast<size_t>(second)];
  s.requests = requests;
  s.served = response ? requests : 0;
  s.response_sum = response ? *response * requests : 0;
}

const std::vector<std::string>& ModelMetrics::Provided() {
  static const std::vector<std::string> names = {"rate",         "response",     "response.p50",
                                                 "response.p95", "response.p99", "active"};
  return names;
}

std::map<std::string, double> ModelMetrics::Averages(const std::string&, Duration window,
                                                     const std::vector<std::string>& backends) {
  const int64_t now_s = (clock_.Now() - origin_).count() / 1000;  // seconds completed
  const int64_t window_s = std::max<int64_t>(1, (window.count() + 999) / 1000);
  const int64_t first = std::max<int64_t>(0, now_s - window_s);
  const int64_t last = std::min<int64_t>(now_s, static_cast<int64_t>(seconds_.size()));  // exclusive
  double requests = 0, served = 0, response_sum = 0;
  for (int64_t s = first; s < last; ++s) {
    const Second& sec = seconds_[static_cast<size_t>(s)];
    requests += sec.requests;
    served += sec.served;
    response_sum += sec.response_sum;
  }
  const double span = static_cast<double>(std::max<int64_t>(1, now_s - first));
  const double n = backends.empty() ? 1.0 : static_cast<double>(backends.size());
  const double response = served > 0 ? response_sum / served : 0;
  std::map<std::string, double> out;
  out["rate"] = requests / span / n;
  out["response"] = response;
  out["response.p50"] = response * std::log(2.0);
  out["response.p95"] = response * std::log(20.0);
  out["response.p99"] = response * std::log(100.0);
  out["active"] = requests / span / n * response;
  return out;
}

}  // namespace reactor
