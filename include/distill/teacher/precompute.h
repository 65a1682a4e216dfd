// Offline precompute: every rank of `comm` is a teacher rank. The split's rows are cut into
// shards (store.shard_size); rank r writes shards r, r + W, ... (Note [shard commit]). A rerun
// skips committed shards and redoes partial ones; rank 0 then writes manifest.json.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/model/teacher_model.h"
#include "distill/store/schema.h"

namespace distill {

struct TeacherOptions {
  // The teacher: a distill model file, checkpoint step dir or checkpoints dir, a Hugging Face
  // directory (config.json + model.safetensors), or a TorchScript file (.pt).
  std::string path;
  long batch_size = 64;   // inference batch; memory grows linearly
  // Run the teacher inside every student rank instead of reading the store: costs a teacher
  // forward per step, stores nothing; needed for hidden-state and attention losses.
  bool online = false;
};

struct LoadedTeacher {
  std::unique_ptr<TeacherModel> model;
  std::string fingerprint;  // model_fingerprint(path)
  std::string file;
};

// Loads a teacher in eval mode; errors name the path.
LoadedTeacher load_teacher(const std::string& path);
// The fingerprint load_teacher() would report, without loading the weights.
std::string teacher_fingerprint(const std::string& path);

struct PrecomputeResult {
  std::int64_t shards_written = 0, shards_skipped = 0;  // over all ranks
  std::int64_t examples_computed = 0;
  std::int64_t store_bytes = 0;
  double seconds = 0;
};

// Collective over `comm`.
PrecomputeResult precompute(Communicator& comm, const Dataset& data, const std::string& split,
                            const TeacherOptions& teacher, const StoreOptions& store);

}  // namespace distill
