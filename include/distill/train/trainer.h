// The student training loop: data-parallel over the ranks of a communicator, gradients averaged
// in buckets overlapping backward (train/reducer.h), input made ahead by a loader thread, AdamW with warmup + linear
// decay, clipping, checkpoints for an exact resume, and metrics as JSON lines. Without a store it is plain supervised
// training.
//
// Note [exact resume]: the model is initialised from train.seed on every rank (and broadcast
// from rank 0); each rank's dropout generator is seeded from (seed, rank) and saved in every
// checkpoint together with the optimizer moments and the sampler cursor. On CPU with the same world
// size a resumed run therefore repeats the uninterrupted run bit for bit.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/kd/intermediate.h"
#include "distill/kd/loss.h"
#include "distill/model/teacher_model.h"
#include "distill/model/network.h"
#include "distill/store/reader.h"
#include "distill/train/optim.h"
#include "distill/train/metrics.h"
#include "distill/train/options.h"
#include "distill/train/reducer.h"
#include "distill/train/step_log.h"

namespace distill {

struct TrainJob {
  const Dataset* data = nullptr;
  std::string train_split = "train";
  std::string eval_split = "dev";
  // Train on these rows of the train split only (distill curve), in this order before shuffling;
  // empty = every row.
  std::vector<std::int64_t> rows;
  const StoreReader* store = nullptr;      // null = supervised (unless online_teacher)
  TeacherModel* online_teacher = nullptr;  // run in every rank for its logits (and layers)
  TeacherModel* eval_teacher = nullptr;    // dev agreement (train.select: dev_agreement)
  // Further teachers (Note [several teachers], kd/loss.h): their stores (with `store`) or their
  // models run online (with `online_teacher`); the soft target mixes all by kd.teacher_weights.
  std::vector<const StoreReader*> more_stores;
  std::vector<TeacherModel*> more_online_teachers;
  LayerLossOptions layers;                 // intermediate-layer terms; need online_teacher
  ModelConfig model;                       // num_labels resolved
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
  double samples_per_s = 0;                // global, over the steps this process ran
  double dev_accuracy = -1;                // -1: not evaluated (no eval split, an empty or unlabeled one)
  double dev_macro_f1 = -1, dev_mcc = -2;  // classifiers, when dev_accuracy is set
  std::optional<RegressionMetrics> dev_regression;  // regression data, when evaluated with labels
  std::int64_t best_step = -1;             // train.select: the best checkpoint's step and metric
  double best_metric = -1;
  bool stopped_early = false;  // train.patience ended the run before its last step
  std::int64_t parameters = 0;
  std::int64_t skipped_steps = 0;  // updates skipped for non-finite values (train.nonfinite: skip)
  double seconds = 0;              // wall time of the steps this process ran
  double first_batch_seconds = 0;  // from the call of train() to its first batch in hand (the step starts)
  double first_step_seconds = 0;   // from the call of train() to the end of its first step
  double wait_seconds = 0;         // of which waiting for the store (streaming; in the loader thread)
  double input_wait_seconds = 0;   // rank 0: the step waiting for the loader thread
  double comm_wait_seconds = 0;    // rank 0: the step waiting on gradient reduction after backward
  std::string device;              // where the student trained
  std::string precision;           // in which precision: fp32 | bf16 | fp16 (train.precision resolved)
  // Step timings after job.untimed_steps (bench); by phase with job.profile.
  TrainProfile profile;
  std::string checkpoint;  // the final checkpoint directory
};

// Collective over `comm`.
TrainResult train(Communicator& comm, const TrainJob& job);

}  // namespace distill
