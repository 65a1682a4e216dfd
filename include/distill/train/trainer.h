// The student training loop: data-parallel over the ranks of a communicator, gradients averaged
// with one flat allreduce per step, AdamW with warmup + linear decay, clipping, checkpoints for an
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
#include "distill/model/bert.h"
#include "distill/store/reader.h"
#include "distill/train/optim.h"

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

  void validate() const;  // throws ConfigError naming train.* fields
  double effective_weight_decay() const { return weight_decay >= 0 ? weight_decay : optimizer == "sgd" ? 0.0 : 0.01; }
};

struct TrainJob {
  const Dataset* data = nullptr;
  std::string train_split = "train";
  std::string eval_split = "dev";
  const StoreReader* store = nullptr;  // null = supervised (unless online_teacher)
  TeacherModel* online_teacher = nullptr;  // run in every rank for its logits (and layers)
  LayerLossOptions layers;                 // intermediate-layer terms; need online_teacher
  BertConfig model;                   // num_labels resolved
  // Sets the initial weights (all ranks call it on the fresh model); empty = random init.
  std::function<void(NetworkImpl&)> init;
  KdOptions kd;
  TrainOptions opt;
  // Streaming (store still being written): the first epoch's order, and a hook that blocks until
  // the shards holding a batch's rows are committed and returns the seconds it waited.
  std::vector<std::int64_t> first_epoch_order;
  std::function<double(std::int64_t epoch, const std::vector<std::int64_t>& rows)> wait_for_rows;
  bool resume = false;
  std::string config_yaml, config_hash, teacher_fingerprint;
};

struct TrainResult {
  std::int64_t steps = 0;
  double final_loss = 0;
  double samples_per_s = 0;    // global, over the steps this process ran
  double dev_accuracy = 0;
  std::int64_t parameters = 0;
  double seconds = 0;          // wall time of the steps this process ran
  double wait_seconds = 0;     // of which waiting for the store (streaming)
  std::string checkpoint;      // the final checkpoint directory
};

// Collective over `comm`.
TrainResult train(Communicator& comm, const TrainJob& job);

}  // namespace distill
