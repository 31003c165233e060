// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): families
// with # HELP and # TYPE, one sample a line, label values escaped (\\, \",
// \n), values as Go's strconv would print them (+Inf, -Inf, NaN).
// Samples of one family are written together whatever order they are added
// in, since parsers (promtool) refuse a family split in two.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/telemetry/counter_registry.h"

namespace reactor {

/// `v` escaped for a label value inside double quotes.
std::string EscapeLabelValue(std::string_view v);
/// `v` escaped for a HELP line (\\ and \n).
std::string EscapeHelp(std::string_view v);
/// A sample value: integers without exponent, others with up to 17 digits.
std::string FormatSampleValue(double v);

class PrometheusText {
 public:
  /// Declares a family. `type` is counter, gauge, histogram or untyped.
  /// Declaring one twice keeps the first.
  void Family(const std::string& name, const std::string& type, const std::string& help);
  /// A sample of family `family` named `name` (the family's name, or with a
  /// histogram's _bucket/_sum/_count suffix). REQUIRES: Family(family) first.
  void Sample(const std::string& family, const std::string& name, const MetricLabels& labels, double value);
  /// Shorthand for a sample named like its family.
  void Sample(const std::string& family, const MetricLabels& labels, double value) {
    Sample(family, family, labels, value);
  }
  /// The whole exposition.
  std::string Render() const;

 private:
  struct Fam {
    std::string name, type, help;
    std::string lines;
  };
  Fam* Find(const std::string& name);
  std::vector<Fam> families_;
};

}  // namespace reactor
