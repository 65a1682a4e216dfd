// Checkpoints: <root>/step-NNNNNNNN/ holds model.safetensors (HF names), optimizer.safetensors
// (AdamW moments and step), rng.safetensors (each rank's CPU generator state) and state.json
// (step, sampler cursor, best metric, world size, config and hashes, resolved precision). The directory is written
// under a temporary name, fsynced and renamed; <root>/latest names the newest complete one and is
// written last, so a crash at any moment leaves the previous checkpoint usable.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "distill/io/safetensors.h"

namespace distill {

struct CheckpointState {
  std::int64_t step = 0;
  std::int64_t epoch = 0, epoch_step = 0;  // sampler cursor
  double best_metric = -1;                 // best dev metric so far (train.select, else dev accuracy; -1 = none)
  std::int64_t world_size = 1;
  std::string config_yaml, config_hash, dataset_hash, teacher_fingerprint;
  std::int64_t skipped_steps = 0;     // non-finite updates skipped so far (train.nonfinite: skip)
  std::string precision;              // train.precision as resolved: fp32 | bf16 | fp16 ("" = not recorded)
  std::int64_t best_step = -1;        // the step of the best checkpoint (train.select; -1 = none)
  std::int64_t evals_since_best = 0;  // dev evaluations since then (train.patience)
};

struct Checkpoint {
  std::string dir;
  CheckpointState state;
  SafeTensors model, optimizer, rng;
  SafeTensors projections;  // learned layer-loss projections (projections.safetensors; absent when none)
};

std::string step_dir_name(std::int64_t step);  // "step-00000042"
// Where a run keeps its checkpoints: `out_dir`/checkpoints.
std::string checkpoints_dir(const std::string& out_dir);

// Writes a checkpoint and then `latest`, and deletes the oldest beyond `keep` (0 = keep all) but
// the best. When the checkpoint is the best (state.best_step == state.step), <root>/best becomes a
// symlink to it. Called by one rank.
void save_checkpoint(const std::string& root, const Checkpoint& c, int keep);
// The checkpoint named by <root>/latest, or nullopt when there is none. Throws DataError when
// `latest` names a missing or broken checkpoint.
std::optional<Checkpoint> load_latest_checkpoint(const std::string& root);
// Step directories under root, oldest first.
std::vector<std::string> list_checkpoints(const std::string& root);

}  // namespace distill
