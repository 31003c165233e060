#include "agent/telemetry/prometheus_text.h"

#include <cmath>
#include <cstdio>

namespace reactor {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatSampleValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    // The shortest of %.15g..%.17g that reads back the same.
    for (int p = 15; p < 17; ++p) {
      char shorter[40];
      std::snprintf(shorter, sizeof shorter, "%.*g", p, v);
      if (std::strtod(shorter, nullptr) == v) return shorter;
    }
  }
  return buf;
}

PrometheusText::Fam* PrometheusText::Find(const std::string& name) {
  for (auto& f : families_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void PrometheusText::Family(const std::string& name, const std::string& type, const std::string& help) {
  if (Find(name)) return;
  families_.push_back({name, type, help, {}});
}

void PrometheusText::Sample(const std::string& family, const std::string& name, const MetricLabels& labels,
                            double value) {
  Fam* f = Find(family);
  if (!f) {
    Family(family, "untyped", family);
    f = &families_.back();
  }
  std::string& out = f->lines;
  out += name;
  if (!labels.empty()) {
    out += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out += ',';
      out += labels[i].first;
      out += "=\"";
      out += EscapeLabelValue(labels[i].second);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += FormatSampleValue(value);
  out += '\n';
}

std::string PrometheusText::Render() const {
  std::string out;
  for (const auto& f : families_) {
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    out += f.lines;
  }
  return out;
}

}  // namespace reactor
