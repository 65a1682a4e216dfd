// The options of the student training loop (train.* in a run config) and their fixed choices.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

#include "distill/model/precision.h"
#include "distill/util/options.h"

namespace distill {

struct BucketOptions;

enum class OptimizerKind { kAdamW, kSgd };
enum class Schedule { kLinear, kConstant };  // linear: warmup, then decay to 0
// How a ready gradient bucket is reduced: nonblocking (completes in finish(), overlapping
// backward) or blocking (at once, in the hook); the same sums either way.
enum class ReduceMode { kNonblocking, kBlocking };
enum class NonFinitePolicy { kStop, kSkip };  // what a non-finite step does (Note [non-finite steps])
// Which dev metric picks the best checkpoint (train.select; Note [best checkpoint] in trainer.cpp).
// dev_pearson and dev_spearman are for regression data (Note [regression] in data/dataset.h).
enum class Select { kNone, kDevAccuracy, kDevF1, kDevAgreement, kDevPearson, kDevSpearman };

// The spellings in configs and logs: adamw, sgd; linear, constant; nonblocking, blocking; stop, skip.
const char* name(OptimizerKind o);
const char* name(Schedule s);
const char* name(ReduceMode r);
const char* name(NonFinitePolicy n);
const char* name(Select s);

// The most intra-op threads one rank may ask for (train.threads); size_threads() further refuses
// more than kThreadsPerCore threads per core the rank may run on.
constexpr long kMaxThreads = 1024;

struct TrainOptions {
  std::string out_dir = "runs/student";  // checkpoints/ and metrics.jsonl go here
  // Per rank; the global batch is batch_size * ranks. A batch_size of at least the train split's
  // size means full-batch steps: each step uses every example once, split among the ranks.
  long batch_size = 32;
  long epochs = 3;        // used when max_steps = 0
  long max_steps = 0;     // total optimizer steps; 0 = epochs * steps per epoch
  double lr = 5e-4;       // peak learning rate
  long warmup_steps = 0;  // linear warmup; 0 = 6% of the steps
  OptimizerKind optimizer = OptimizerKind::kAdamW;
  double momentum = 0;       // sgd only
  double weight_decay = -1;  // -1 = the optimizer's default: 0.01 for adamw, 0 for sgd
  Schedule schedule = Schedule::kLinear;
  double max_grad_norm = 1.0;  // global-norm clipping; 0 = off
  long checkpoint_every = 0;   // steps between checkpoints; 0 = only at the end
  long keep_checkpoints = 2;   // newest kept; 0 = all
  long log_every = 10;         // steps between metrics lines
  bool tensorboard = true;     // rank 0 mirrors metrics.jsonl as TensorBoard events in out_dir/tb
  long eval_batch_size = 128;
  long seed = 1234;                        // model init, sampling order and dropout streams derive from it
  long threads = 0;                        // intra-op threads per rank; 0 = cores of the node / ranks on it
  std::string device = "auto";             // Note [devices]: auto | cpu | cuda | cuda:N
  Precision precision = Precision::kAuto;  // auto | fp32 | bf16: autocast, float32 master weights
  double bucket_mb = 25;                   // gradient buckets after a first one of 1 MiB (train/reducer.h)
  ReduceMode reduce = ReduceMode::kNonblocking;
  long prefetch = 2;  // batches the loader thread makes ahead; 0 = none (synchronous)
  // Note [lazy rows]: the epoch order permutes blocks of the data set's chunk rows, then rows within
  // windows of this many blocks; 0 = a full permutation. Splits of at most one window are
  // permuted whole either way.
  long shuffle_window = 16;
  double comm_timeout = 600;  // watchdog (MPI and NCCL): seconds one collective may take
  // Note [non-finite steps]: a step whose loss or gradient norm is not finite on any rank is
  // "stop" (default): the job ends naming the step, ranks, terms and example ids, and no checkpoint
  // is written after it; "skip": the update is skipped and counted, and more than
  // max_skipped_steps skips end the job.
  NonFinitePolicy nonfinite = NonFinitePolicy::kStop;
  long max_skipped_steps = 10;
  Select select = Select::kNone;  // evaluate dev at every checkpoint and keep the best as checkpoints/best
  long patience = 0;              // stop after this many evaluations without improvement; 0 = never

  // The train.* keys: one declaration per field, with its help and per-field checks.
  static const OptionTable<TrainOptions>& options();
  void validate() const;  // throws ConfigError naming train.* fields
  BucketOptions buckets() const;
  double effective_weight_decay() const {
    return weight_decay >= 0 ? weight_decay : optimizer == OptimizerKind::kSgd ? 0.0 : 0.01;
  }
};

// train.precision resolved for `d` (resolve_precision with this CPU's units, Note [cpu bf16]);
// `log`: the choice and any warning go to the log.
c10::ScalarType train_precision(const TrainOptions& o, const c10::Device& d, bool log = true);

}  // namespace distill
