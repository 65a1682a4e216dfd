#include "distill/train/nonfinite.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "distill/util/error.h"

namespace distill {

std::string example_ids(const DataSplit& split, const std::vector<std::int64_t>& rows, std::size_t max) {
  std::string ids;
  for (std::size_t i = 0; i < rows.size() && i < max; ++i) {
    const auto r = rows[i];
    ids += str(i ? "," : "", r < static_cast<std::int64_t>(split.example_id.size()) ? split.example_id[r] : r);
  }
  if (rows.size() > max) ids += str(",... (", rows.size(), " examples)");
  return ids;
}

std::string nonfinite_report(int rank, const float* terms, const char* const* names, int n, double grad_norm,
                             const DataSplit& split, const std::vector<std::int64_t>& rows) {
  std::string bad;
  for (int k = 0; k < n; ++k)
    if (!std::isfinite(terms[k])) bad += str(bad.empty() ? "" : ", ", names[k], " = ", terms[k]);
  if (!std::isfinite(grad_norm)) bad += str(bad.empty() ? "" : ", ", "grad_norm = ", grad_norm);
  if (bad.empty()) return "";
  return str("rank ", rank, ": ", bad, " (batch example ids ", example_ids(split, rows), ")");
}

void handle_nonfinite_step(Communicator& comm, const std::string& report, std::int64_t step, bool skip,
                           std::int64_t max_skipped, std::int64_t& skipped) {
  std::string who;
  for (const auto& r : comm.allgather_string(report))
    if (!r.empty()) who += str(who.empty() ? "" : "; ", r);
  const std::string what = str("non-finite values at step ", step, ": ", who);
  if (skip && skipped < max_skipped) {
    ++skipped;
    if (comm.rank() == 0)
      spdlog::warn("{}; update skipped ({} of at most {}, train.max_skipped_steps)", what, skipped, max_skipped);
    return;
  }
  throw DataError(str(what, skip ? str("; more than train.max_skipped_steps = ", max_skipped, " steps skipped") : "",
                      ". No checkpoint was written after step ", step - 1,
                      "; lower train.lr, check the store and data, or set train.nonfinite: skip"));
}

}  // namespace distill
