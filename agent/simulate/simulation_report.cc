#include "agent/simulate/simulation_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace reactor {
namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A number as JSON: whole values without ".0", others rounded to 4 decimals.
nlohmann::ordered_json Num(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 9e15) return static_cast<int64_t>(std::llround(v));
  return std::round(v * 1e4) / 1e4;
}

}  // namespace

std::string SummaryJson(const SimulationSummary& s) {
  nlohmann::ordered_json j{{"seconds", s.seconds},
                           {"overload_seconds", s.overload_seconds},
                           {"instance_seconds", Num(s.instance_seconds)},
                           {"oracle_instance_seconds", Num(s.oracle_instance_seconds)},
                           {"cost_ratio", Num(s.cost_ratio)},
                           {"scale_ups", s.scale_ups},
                           {"scale_downs", s.scale_downs},
                           {"max_instances", s.max_instances}};
  return j.dump();
}

std::string SummaryTable(const std::vector<LabelledRun>& runs) {
  std::vector<std::pair<std::string, std::vector<std::string>>> rows = {
      {"", {}},
      {"seconds", {}},
      {"overload_seconds", {}},
      {"overload %", {}},
      {"instance_seconds", {}},
      {"oracle_instance_seconds", {}},
      {"cost_ratio", {}},
      {"scale_ups", {}},
      {"scale_downs", {}},
      {"max_instances", {}},
  };
  for (const auto& run : runs) {
    const SimulationSummary& s = run.result->summary;
    rows[0].second.push_back(run.label);
    rows[1].second.push_back(std::to_string(s.seconds));
    rows[2].second.push_back(std::to_string(s.overload_seconds));
    rows[3].second.push_back(Fixed(s.OverloadPercent(), 2));
    rows[4].second.push_back(Fixed(s.instance_seconds, 0));
    rows[5].second.push_back(Fixed(s.oracle_instance_seconds, 0));
    rows[6].second.push_back(Fixed(s.cost_ratio, 3));
    rows[7].second.push_back(std::to_string(s.scale_ups));
    rows[8].second.push_back(std::to_string(s.scale_downs));
    rows[9].second.push_back(std::to_string(s.max_instances));
  }
  size_t name_w = 0;
  std::vector<size_t> col_w(runs.size(), 0);
  for (const auto& [name, cells] : rows) {
    name_w = std::max(name_w, name.size());
    for (size_t c = 0; c < cells.size(); ++c) col_w[c] = std::max(col_w[c], cells[c].size());
  }
  std::string out;
  for (const auto& [name, cells] : rows) {
    std::string line = name + std::string(name_w - name.size(), ' ');
    for (size_t c = 0; c < cells.size(); ++c) {
      line += "  " + std::string(col_w[c] - cells[c].size(), ' ') + cells[c];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string TimelineCsv(const SimulationResult& r) {
  std::string out =
      "second,load,instances,serving,capacity,rate,response,overload,oracle,target,launched,removed,held\n";
  for (const auto& s : r.timeline) {
    out += std::to_string(s.second) + "," + Num(s.load).dump() + "," + std::to_string(s.instances) + "," +
           std::to_string(s.serving) + "," + Num(s.capacity).dump() + "," + Num(s.rate).dump() + "," +
           (s.response ? Num(*s.response).dump() : std::string()) + "," + (s.overload ? "1" : "0") + "," +
           std::to_string(s.oracle) + "," + std::to_string(s.target) + "," + std::to_string(s.launched) + "," +
           std::to_string(s.removed) + "," + (s.held ? "1" : "0") + "\n";
  }
  return out;
}

std::string TimelineSvg(const std::vector<LabelledRun>& runs, double capacity) {
  const int width = 1200, height = 500;
  const int left = 70, right = 70, top = 40, bottom = 60;
  const int plot_w = width - left - right, plot_h = height - top - bottom;
  const SimulationResult& first = *runs.front().result;
  const size_t n = first.timeline.size();
  double max_load = 1;
  int max_inst = 1;
  for (const auto& run : runs) {
    for (const auto& s : run.result->timeline) {
      max_load = std::max({max_load, s.load, s.capacity});
      max_inst = std::max({max_inst, s.instances, s.oracle});
    }
  }
  // The two axes share one scale when capacity makes them line up: instances × capacity = req/s.
  max_load = std::max(max_load, max_inst * capacity);
  max_inst = static_cast<int>(std::ceil(max_load / capacity));
  const size_t columns = std::min<size_t>(n, static_cast<size_t>(plot_w));
  auto x_of = [&](size_t col) {
    return left + (columns <= 1 ? 0.0 : plot_w * static_cast<double>(col) / (columns - 1));
  };
  auto y_of = [&](double v, double vmax) { return top + plot_h * (1 - v / vmax); };
  // Column c covers seconds [c·n/columns, (c+1)·n/columns).
  auto range_of = [&](size_t c) {
    return std::make_pair(c * n / columns, std::max((c + 1) * n / columns, c * n / columns + 1));
  };
  auto polyline = [&](const SimulationResult& r, auto value, double vmax, const std::string& style) {
    std::ostringstream p;
    p << "<polyline fill=\"none\" " << style << " points=\"";
    for (size_t c = 0; c < columns; ++c) {
      auto [a, b] = range_of(c);
      double v = 0;
      for (size_t i = a; i < b && i < r.timeline.size(); ++i) v = std::max(v, value(r.timeline[i]));
      p << Fixed(x_of(c), 1) << "," << Fixed(y_of(v, vmax), 1) << " ";
    }
    p << "\"/>\n";
    return p.str();
  };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg << "<title>reactor simulate</title>\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // Axes and grid.
  for (int k = 0; k <= 5; ++k) {
    double v = max_load * k / 5;
    double y = y_of(v, max_load);
    svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << Fixed(y, 1) << "\" y2=\""
        << Fixed(y, 1) << "\" stroke=\"#ddd\"/>\n";
    svg << "<text x=\"" << left - 6 << "\" y=\"" << Fixed(y + 4, 1) << "\" text-anchor=\"end\">" << Fixed(v, 0)
        << "</text>\n";
    svg << "<text x=\"" << left + plot_w + 6 << "\" y=\"" << Fixed(y + 4, 1) << "\">"
        << Fixed(v / capacity, v / capacity < 10 ? 1 : 0) << "</text>\n";
  }
  svg << "<text x=\"" << left - 50 << "\" y=\"" << top - 12 << "\">req/s</text>\n";
  svg << "<text x=\"" << left + plot_w + 6 << "\" y=\"" << top - 12 << "\">instances</text>\n";
  for (int k = 0; k <= 6; ++k) {
    double sec = (n > 0 ? n - 1 : 0) * k / 6.0;
    double x = left + plot_w * k / 6.0;
    svg << "<text x=\"" << Fixed(x, 1) << "\" y=\"" << top + plot_h + 18 << "\" text-anchor=\"middle\">"
        << Fixed(sec, 0) << " s</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"#888\"/>\n";

  svg << polyline(
      first, [](const SimulatedSecond& s) { return s.load; }, max_load, "stroke=\"#444\" stroke-width=\"1\"");
  svg << polyline(
      first, [](const SimulatedSecond& s) { return static_cast<double>(s.oracle); }, max_inst,
      "stroke=\"#2a2\" stroke-width=\"1\" stroke-dasharray=\"4 3\"");
  const char* colours[] = {"#1f6fd0", "#d07a1f", "#8a2be2", "#0a9396"};
  std::string legend;
  for (size_t k = 0; k < runs.size(); ++k) {
    const char* colour = colours[k % 4];
    svg << polyline(
        *runs[k].result, [](const SimulatedSecond& s) { return s.capacity; }, max_load,
        std::string("stroke=\"") + colour + "\" stroke-width=\"1\" stroke-opacity=\"0.5\"");
    svg << polyline(
        *runs[k].result, [](const SimulatedSecond& s) { return static_cast<double>(s.instances); }, max_inst,
        std::string("stroke=\"") + colour + "\" stroke-width=\"1.5\"");
    // Overload marks: a red tick per column with any overload second.
    const double y = top + plot_h + 24 + 8.0 * static_cast<double>(k);
    for (size_t c = 0; c < columns; ++c) {
      auto [a, b] = range_of(c);
      bool any = false;
      for (size_t i = a; i < b && i < runs[k].result->timeline.size(); ++i)
        any = any || runs[k].result->timeline[i].overload;
      if (any) {
        svg << "<rect x=\"" << Fixed(x_of(c), 1) << "\" y=\"" << Fixed(y, 1)
            << "\" width=\"1.5\" height=\"6\" fill=\"#d00\"/>\n";
      }
    }
    const SimulationSummary& s = runs[k].result->summary;
    legend += "<text x=\"" + std::to_string(left + 10) + "\" y=\"" +
              std::to_string(top - 24 + 14 * static_cast<int>(k)) + "\" fill=\"" + colour + "\">" +
              XmlEscape(runs[k].label) + ": " + Fixed(s.OverloadPercent(), 2) + "% overload, " +
              Fixed(s.cost_ratio, 2) + "× oracle</text>\n";
  }
  svg << legend;
  svg << "<text x=\"" << left + plot_w << "\" y=\"" << top - 24
      << "\" text-anchor=\"end\">load (grey), capacity (light), instances (bold), oracle (green dashed), "
         "overload (red)</text>\n";
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace reactor
