// Plain-text tables for the CLI's default (non --json) output.
#pragma once

#include <iostream>
#include <string>
#include <vector>

namespace reactor::cli {

/// Prints rows under a header, columns padded to their widest cell.
inline void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       std::ostream& out = std::cout) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      s += cells[i];
      if (i + 1 < cells.size()) s += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    out << s << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

}  // namespace reactor::cli
