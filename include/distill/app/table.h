// A text table as the commands print it: the first column left-aligned, the others right-aligned,
// each as wide as its widest cell.
#pragma once
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

namespace distill {

struct Table {
  std::vector<std::vector<std::string>> rows;
  void print() const {
    std::vector<std::size_t> w;
    for (const auto& r : rows)
      for (std::size_t k = 0; k < r.size(); ++k) {
        if (w.size() <= k) w.push_back(0);
        w[k] = std::max(w[k], r[k].size());
      }
    for (const auto& r : rows) {
      std::string line;
      for (std::size_t k = 0; k < r.size(); ++k)
        line +=
            (k == 0 ? r[k] + std::string(w[k] - r[k].size(), ' ') : std::string(w[k] - r[k].size() + 2, ' ') + r[k]);
      std::cout << line << "\n";
    }
    std::cout << std::flush;
  }
};

}  // namespace distill
