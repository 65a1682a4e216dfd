// Note [non-finite steps]: a step whose loss terms or gradient norm are not finite on any rank is
// decided the same way on every rank, before the update: train.nonfinite "stop" ends the job naming
// the step, ranks, terms and example ids; "skip" skips the update and counts it, up to
// train.max_skipped_steps. Checkpoints are written only with finite weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"

namespace distill {

// "id,id,...": the example ids of `rows` of `split`, at most `max`, then ",... (n examples)".
std::string example_ids(const DataSplit& split, const std::vector<std::int64_t>& rows, std::size_t max = 8);

// One rank's account of a step: its non-finite terms (names[k] = terms[k]) and gradient norm with
// the example ids of its batch; "" when all of them are finite.
std::string nonfinite_report(int rank, const float* terms, const char* const* names, int n, double grad_norm,
                             const DataSplit& split, const std::vector<std::int64_t>& rows);

// Collective: every rank calls it once the ranks agree that step `step` (1-based) is non-finite.
// Returns normally (the update is to be skipped, `skipped` counted) when `skip` allows one more,
// else throws DataError on every rank with all ranks' reports.
void handle_nonfinite_step(Communicator& comm, const std::string& report, std::int64_t step, bool skip,
                           std::int64_t max_skipped, std::int64_t& skipped);

}  // namespace distill
