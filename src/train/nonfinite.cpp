#include "distill/train/nonfinite.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "distill/util/error.h"

namespace distill {

std::string example_ids(const DataSplit& split, const std::vector<std::int64_t>& rows, std::size_t max) {
  std::string ids;
  const std::vector<std::int64_t> shown(rows.begin(),
                                        rows.begin() + static_cast<std::ptrdiff_t>(std::min(max, rows.size())));
  std::vector<std::int64_t> id = shown;  // row numbers when the ids cannot be read
  try {
    id = split.select(shown).example_id;
  } catch (const Error&) {
  }
  for (std::size_t i = 0; i < id.size(); ++i) ids += str(i ? "," : "", id[i]);
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
