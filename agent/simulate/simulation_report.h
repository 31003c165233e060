// What `reactor simulate` prints: the summary as JSON or a table (one
// column per rule set with --compare), the per-second timeline as CSV, and
// a chart of load, capacity and instances over time as a standalone SVG.
#pragma once

#include <string>
#include <vector>

#include "agent/simulate/simulation.h"

namespace reactor {

/// {"seconds","overload_seconds","instance_seconds","oracle_instance_seconds",
///  "cost_ratio","scale_ups","scale_downs","max_instances"} on one line.
std::string SummaryJson(const SimulationSummary& s);

/// A labelled run for the table and the chart.
struct LabelledRun {
  std::string label;  // e.g. the rules
  const SimulationResult* result = nullptr;
};

/// A text table: one row per metric, one column per run.
std::string SummaryTable(const std::vector<LabelledRun>& runs);

/// Header `second,load,instances,serving,capacity,rate,response,overload,oracle,target,launched,removed,held`,
/// then one line per second (response empty when nothing was served).
std::string TimelineCsv(const SimulationResult& r);

/// An SVG chart (fixed size, no scripts): load and serving capacity (req/s,
/// left axis) and instances (right axis) of each run, the oracle's
/// instances dashed, overload seconds marked red along the bottom.
/// Long traces are drawn at one point per pixel column (the maximum of the
/// seconds it covers).
std::string TimelineSvg(const std::vector<LabelledRun>& runs, double capacity);

}  // namespace reactor
