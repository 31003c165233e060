#include "agent/telemetry/counter_registry.h"

namespace reactor {

void CounterRegistry::Add(const std::string& family, const MetricLabels& labels, double delta) {
  if (!(delta >= 0)) return;  // counters never go down (and NaN is no count)
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(family, labels);
  auto it = series_.find(key);
  if (it == series_.end()) {
    if (series_.size() >= kMaxSeries) {
      ++dropped_;
      return;
    }
    it = series_.emplace(std::move(key), 0.0).first;
  }
  it->second += delta;
}

std::vector<CounterRegistry::Series> CounterRegistry::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Series> out;
  out.reserve(series_.size());
  for (const auto& [key, value] : series_) out.push_back({key.first, key.second, value});
  return out;
}

double CounterRegistry::Value(const std::string& family, const MetricLabels& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(std::make_pair(family, labels));
  return it == series_.end() ? 0 : it->second;
}

void CounterRegistry::ForgetLabel(const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = series_.begin(); it != series_.end();) {
    bool match = false;
    for (const auto& [k, v] : it->first.second) match = match || (k == name && v == value);
    it = match ? series_.erase(it) : std::next(it);
  }
}

uint64_t CounterRegistry::DroppedSeries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

CounterRegistry& CounterRegistry::Global() {
  static CounterRegistry* registry = new CounterRegistry();  // never destroyed: counted into until exit
  return *registry;
}

void CountEvent(const std::string& family, const MetricLabels& labels, double delta) {
  CounterRegistry::Global().Add(family, labels, delta);
}

}  // namespace reactor
