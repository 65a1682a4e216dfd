// The student training loop: data-parallel over the ranks of a communicator, gradients averaged
// in buckets overlapping backward (train/reducer.h), input made ahead by a loader thread, AdamW with warmup + linear decay, clipping, checkpoints for an
// exact resume, and metrics as JSON lines. Without a store it is plain supervised training.
//
// Note [exact resume]: the model is initialised from train.seed on every rank (and broadcast
// from rank 0); each rank's dropout generator is seeded from (seed, rank) and saved in every
// checkpoint together with the optimizer moments and the sampler cursor. On CPU with the same world
// size a resumed run therefore repeats the uninterrupted run bit for bit.
#pragma once
#include <functional>
#include <cstdint>
#include <string>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/kd/intermediate.h"
#include "distill/kd/loss.h"
#include "distill/model/teacher_model.h"
#include "distill/model/network.h"
#include "distill/store/reader.h"
#include "distill/train/optim.h"
#include "distill/train/reducer.h"
#include "distill/train/step_log.h"

namespace distill {

struct TrainOptions {
  std::string out_dir = "runs/student";  // checkpoints/ and metrics.jsonl go here
  // Per rank; the global batch is batch_size * ranks. A batch_size of at least the train split's
  // size means full-batch steps: each step uses every example once, split among the ranks.
  long batch_size = 32;
  long epochs = 3;              // used when max_steps = 0
  long max_steps = 0;           // total optimizer steps; 0 = epochs * steps per epoch
  double lr = 5e-4;             // peak learning rate
  long warmup_steps = 0;        // linear warmup; 0 = 6% of the steps
  std::string optimizer = "adamw";  // adamw | sgd
  double momentum = 0;          // sgd only
  double weight_decay = -1;     // -1 = the optimizer's default: 0.01 for adamw, 0 for sgd
  std::string schedule = "linear";  // linear (warmup, then decay to 0) | constant
  double max_grad_norm = 1.0;   // global-norm clipping; 0 = off
  long checkpoint_every = 0;    // steps between checkpoints; 0 = only at the end
  long keep_checkpoints = 2;    // newest kept; 0 = all
  long log_every = 10;          // steps between metrics lines
  long eval_batch_size = 128;
  long seed = 1234;             // model init, sampling order and dropout streams derive from it
  long threads = 0;             // intra-op threads per rank; 0 = cores of the node / ranks on it
  std::string device = "auto";     // Note [devices]: auto | cpu | cuda | cuda:N
  std::string precision = "fp32";  // fp32 | bf16 (autocast on GPUs, float32 master weights)
  double bucket_mb = 25;           // gradient buckets after a first one of 1 MiB (train/reducer.h)
  // How a ready bucket is reduced: nonblocking (completes in finish(), overlapping backward) or
  // blocking (at once, in the hook); the same sums either way.
  std::string reduce = "nonblocking";
  long prefetch = 2;               // batches the loader thread makes ahead; 0 = none (synchronous)
  double comm_timeout = 600;       // watchdog (MPI and NCCL): seconds one collective may take
  // Note [non-finite steps]: a step whose loss or gradient norm is not finite on any rank is
  // "stop" (default): the job ends naming the step, ranks, terms and example ids, and no checkpoint
  // is written after it; "skip": the update is skipped and counted, and more than
  // max_skipped_steps skips end the job.
  std::string nonfinite = "stop";
  long max_skipped_steps = 10;

  void validate() const;  // throws ConfigError naming train.* fields
  BucketOptions buckets() const;
  double effective_weight_decay() const { return weight_decay >= 0 ? weight_decay : optimizer == "sgd" ? 0.0 : 0.01; }
};

struct TrainJob {
  const Dataset* data = nullptr;
  std::string train_split = "train";
  std::string eval_split = "dev";
  const StoreReader* store = nullptr;  // null = supervised (unless online_teacher)
  TeacherModel* online_teacher = nullptr;  // run in every rank for its logits (and layers)
  LayerLossOptions layers;                 // intermediate-layer terms; need online_teacher
  ModelConfig model;                   // num_labels resolved
  // Sets the initial weights (all ranks call it on the fresh model); empty = random init.
  std::function<void(NetworkImpl&)> init;
  KdOptions kd;
  TrainOptions opt;
  // Streaming (store still being written): the first epoch's order, and a hook that blocks until
  // the shards holding a batch's rows are committed and returns the seconds it waited.
  std::vector<std::int64_t> first_epoch_order;
  std::function<double(std::int64_t epoch, const std::vector<std::int64_t>& rows)> wait_for_rows;
  bool resume = false;
  std::int64_t untimed_steps = 0;  // warm-up steps left out of TrainResult's step timings (bench)
  bool profile = false;            // time each step's phases (synchronizes the device between them)
  // Called on every rank after each checkpoint is written (fault injection in tests); empty = none.
  std::function<void(int rank, std::int64_t step)> after_checkpoint;
  std::string config_yaml, config_hash, teacher_fingerprint;
};

struct TrainResult {
  std::int64_t steps = 0;
  double final_loss = 0;
  double samples_per_s = 0;    // global, over the steps this process ran
  double dev_accuracy = -1;    // -1: not evaluated (no eval split, or an empty one)
  std::int64_t parameters = 0;
  std::int64_t skipped_steps = 0;  // updates skipped for non-finite values (train.nonfinite: skip)
  double seconds = 0;          // wall time of the steps this process ran
  double wait_seconds = 0;     // of which waiting for the store (streaming; in the loader thread)
  double input_wait_seconds = 0;  // rank 0: the step waiting for the loader thread
  double comm_wait_seconds = 0;   // rank 0: the step waiting on gradient reduction after backward
  std::string device;             // where the student trained
  // Step timings after job.untimed_steps (bench); by phase with job.profile.
  TrainProfile profile;
  std::string checkpoint;      // the final checkpoint directory
};

// Collective over `comm`.
TrainResult train(Communicator& comm, const TrainJob& job);

// train.precision resolved for `d`: bf16 on a GPU; with train.device auto the CPU falls back to
// fp32 (with a warning), an explicit cpu device with bf16 is a ConfigError.
c10::ScalarType train_precision(const TrainOptions& o, const c10::Device& d);

}  // namespace distill
