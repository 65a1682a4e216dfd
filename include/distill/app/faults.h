// Fault injection for the end-to-end tests. The environment is read here, in the app layer only,
// and turned into the hooks the trainer and precompute accept:
//   DISTILL_FAULT_KILL_AT_STEP=k        rank 0 dies by SIGKILL right after step k's checkpoint;
//   DISTILL_FAULT_KILL_AFTER_SHARDS=n   rank 0 leaves a partial shard and dies by SIGKILL after
//                                       committing n shards;
//   DISTILL_FAULT_TEACHER_DELAY_MS=ms   every shard of every teacher rank starts ms later.
#pragma once
#include <cstdint>
#include <functional>

#include "distill/teacher/precompute.h"

namespace distill {

// For TrainJob::after_checkpoint; empty when DISTILL_FAULT_KILL_AT_STEP is unset.
std::function<void(int rank, std::int64_t step)> fault_after_checkpoint();
// For precompute(); empty hooks when neither precompute variable is set.
PrecomputeHooks fault_precompute_hooks();

}  // namespace distill
