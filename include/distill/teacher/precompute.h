// Offline precompute: every rank of `comm` is a teacher rank. It runs the teacher over its shards
// of the split, batch by batch, and hands the targets to the store writer (store/writer.h), which
// lays the shards out (rank r writes shards r, r + W, ...; Note [shard commit]), skips committed
// shards, redoes partial ones and has rank 0 write manifest.json.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/store/schema.h"
#include "distill/teacher/load.h"

namespace distill {

struct PrecomputeResult {
  std::int64_t shards_written = 0, shards_skipped = 0;  // over all ranks
  std::int64_t examples_computed = 0;
  std::int64_t store_bytes = 0;
  double seconds = 0;
  double write_seconds = 0;       // of rank 0: time spent writing shards (in the writer thread)
  double write_wait_seconds = 0;  // of rank 0: time the teacher waited for the writer
  // A teacher in reduced precision against its own float32 outputs (check_teacher_precision).
  std::string teacher_precision = "fp32";
  std::int64_t check_rows = 0;  // logit rows compared (examples, or masked tokens); 0 = no check
  double check_top1 = -1;       // share of rows whose argmax agrees
  double check_kl = -1;         // mean KL(p_fp32 || p_reduced) at T = 1
  double check_max_abs = -1;    // largest |logit fp32 - logit reduced| (a regressor's only measure)
};

// Collective: runs the teacher (in its reduced precision) and again in float32 on up to `rows`
// examples spread evenly over the split, and compares the logits: top-1 match and mean KL. The
// teacher is back in its precision afterwards. Precompute calls it when the precision is not fp32.
PrecomputeResult check_teacher_precision(Communicator& comm, const LoadedTeacher& teacher, const DataSplit& split,
                                         long batch_size, std::int64_t rows = 1024);

// What to store beyond the logits.
struct TargetSpec {
  // Intermediate layers (the app sets them when distill.hidden_map or attention_map is set, from
  // the maps' teacher layers, kd/layer_map.h): the store records the teacher's layer shapes and
  // holds the hidden states (0..L) and attention maps (1..L) of the teacher layers listed, in
  // float16, ascending without repeats; the lists may be empty. Needs a BERT classifier teacher
  // (storable_teacher_layers); any layer listed implies `intermediate`. qkv_layers (1..L): the
  // queries, keys and values of those layers (the relation loss's targets), in float16.
  bool intermediate = false;
  std::vector<long> hidden_layers, attention_layers, qkv_layers;
  double temperature = 1;  // masked LM: the stored lse is logsumexp(z / temperature)
};

// Hooks for tests (fault injection), called on the rank that runs them; empty = none.
struct PrecomputeHooks {
  // Before each shard this rank computes: the shards it has committed in this call so far (every
  // earlier shard of the rank is committed when it is called) and the shard's final path.
  std::function<void(int rank, std::int64_t committed, const std::string& shard_path)> before_shard;
};

// Collective over `comm`; `teacher` is loaded on every rank (load_teacher with `options`, whose
// batch_size is the inference batch). Every rank checks that the teacher fits the data set and
// its task. Rank 0 prints the estimated bytes per example and in total first, and every rank
// refuses (ConfigError) when the estimate exceeds store.max_bytes. A target that is not finite
// fails (DataError naming the teacher, the shard and the first example ids) before anything of
// its shard is written. A teacher in bf16 or fp16 is first checked against its float32 outputs
// (check_teacher_precision; rank 0 logs the figures, which the result carries).
PrecomputeResult precompute(Communicator& comm, const Dataset& data, const std::string& split,
                            const LoadedTeacher& teacher, const TeacherOptions& options, const StoreOptions& store,
                            const TargetSpec& targets = {}, const PrecomputeHooks& hooks = {});

}  // namespace distill
