// Monotonic counters that the agent's modules bump for /metrics, through one
// narrow call, so that nginx/, health/ and runtime/ need no wiring to count:
//
//   CountEvent("reactor_nginx_reloads_total", {{"result", "ok"}});
//
// A family is a Prometheus metric name ending in _total; labels are
// (name, value) pairs whose values are bounded sets (endpoint names, a result
// word), never free text. The registry keeps at most kMaxSeries series;
// beyond, new series are not created and counted in DroppedSeries().
//
// Thread-safety: every method is thread-safe (one mutex, held only for a
// map update), so callers may count while holding their own locks.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace reactor {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class CounterRegistry {
 public:
  static constexpr size_t kMaxSeries = 50000;

  /// Adds `delta` (>= 0) to the series (family, labels).
  void Add(const std::string& family, const MetricLabels& labels, double delta = 1);

  struct Series {
    std::string family;
    MetricLabels labels;
    double value = 0;
  };
  /// Every series, ordered by family then labels.
  std::vector<Series> Snapshot() const;
  /// The value of one series (0 when it does not exist).
  double Value(const std::string& family, const MetricLabels& labels) const;
  /// Removes every series that has label `name` = `value` (an unmanaged endpoint).
  void ForgetLabel(const std::string& name, const std::string& value);
  uint64_t DroppedSeries() const;

  /// The process-wide registry that CountEvent adds to.
  static CounterRegistry& Global();

 private:
  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::map<std::pair<std::string, MetricLabels>, double> series_;
  uint64_t dropped_ = 0;
};

/// CounterRegistry::Global().Add(family, labels, delta).
void CountEvent(const std::string& family, const MetricLabels& labels = {}, double delta = 1);

}  // namespace reactor
