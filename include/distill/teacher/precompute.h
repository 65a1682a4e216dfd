// Offline precompute: every rank of `comm` is a teacher rank. The split's rows are cut into
// shards (store.shard_size); rank r writes shards r, r + W, ... (Note [shard commit]). A rerun
// skips committed shards and redoes partial ones; rank 0 then writes manifest.json.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/model/precision.h"
#include "distill/model/teacher_model.h"
#include "distill/store/schema.h"
#include "distill/util/options.h"

namespace distill {

struct TeacherOptions {
  // The teacher: a distill model file, checkpoint step dir or checkpoints dir, a Hugging Face
  // directory (config.json + model.safetensors), or a TorchScript file (.pt).
  std::string path;
  long batch_size = 64;   // inference batch; memory grows linearly
  std::string device = "auto";  // Note [devices]: auto | cpu | cuda | cuda:N
  Precision precision = Precision::kFp32;  // inference precision on a GPU: fp32 | bf16 | fp16
  // Run the teacher inside every student rank instead of reading the store: costs a teacher
  // forward per step, stores nothing; needed for hidden-state and attention losses.
  bool online = false;

  // The teacher.* keys (teacher.ranks and teacher.stream_timeout are StreamOptions, app/config.h).
  static const OptionTable<TeacherOptions>& options();
};

struct LoadedTeacher {
  std::unique_ptr<TeacherModel> model;
  std::string fingerprint;  // model_fingerprint(path)
  std::string file;
  c10::Device device{c10::kCPU};  // where it runs (load_teacher with options)
};

// Loads a teacher in eval mode; errors name the path. With `comm`, places it on the device and
// precision of `o` for this rank (Note [devices]).
LoadedTeacher load_teacher(const std::string& path);
LoadedTeacher load_teacher(const TeacherOptions& o, const Communicator& comm);
// The fingerprint load_teacher() would report, without loading the weights.
std::string teacher_fingerprint(const std::string& path);

struct PrecomputeResult {
  std::int64_t shards_written = 0, shards_skipped = 0;  // over all ranks
  std::int64_t examples_computed = 0;
  std::int64_t store_bytes = 0;
  double seconds = 0;
  double write_seconds = 0;  // of rank 0: time spent writing shards (in the writer thread)
  double write_wait_seconds = 0;  // of rank 0: time the teacher waited for the writer
};

// What to store beyond the logits.
struct TargetSpec {
  // Intermediate layers: the layer maps (kd/layer_map.h) for a student of `student_layers`; the
  // mapped teacher layers' hidden states / attention maps are stored in float16.
  std::string hidden_map, attention_map;
  long student_layers = 0;
  double temperature = 1;  // masked LM: the stored lse is logsumexp(z / temperature)
};

// Hooks for tests (fault injection), called on the rank that runs them; empty = none.
struct PrecomputeHooks {
  // Before each shard this rank computes: the shards it has committed in this call so far (every
  // earlier shard of the rank is committed when it is called) and the shard's final path.
  std::function<void(int rank, std::int64_t committed, const std::string& shard_path)> before_shard;
};

// Bytes one masked token costs in an mlm_topk store: k values (2 or 4 bytes), k indices (2 or 4),
// the lse and its share of row_offsets (4 + 8 / tokens, counted as 4).
std::int64_t topk_bytes_per_token(std::int64_t k, bool half_values, bool short_indices);
// The default k: the largest power of two whose masked token costs at most 300 bytes.
std::int64_t default_topk(bool half_values, bool short_indices);

// Collective over `comm`. Rank 0 prints the estimated bytes per example and in total first, and
// every rank refuses (ConfigError) when the estimate exceeds store.max_bytes.
PrecomputeResult precompute(Communicator& comm, const Dataset& data, const std::string& split,
                            const TeacherOptions& teacher, const StoreOptions& store, const TargetSpec& targets = {});

}  // namespace distill
