#include "distill/train/options.h"

#include <spdlog/spdlog.h>

#include "distill/model/device.h"
#include "distill/train/reducer.h"
#include "distill/util/error.h"

namespace distill {

const char* name(OptimizerKind o) { return o == OptimizerKind::kSgd ? "sgd" : "adamw"; }
const char* name(Schedule s) { return s == Schedule::kConstant ? "constant" : "linear"; }
const char* name(ReduceMode r) { return r == ReduceMode::kBlocking ? "blocking" : "nonblocking"; }
const char* name(NonFinitePolicy n) { return n == NonFinitePolicy::kSkip ? "skip" : "stop"; }
const char* name(Select s) {
  switch (s) {
    case Select::kDevAccuracy:
      return "dev_accuracy";
    case Select::kDevF1:
      return "dev_f1";
    case Select::kDevAgreement:
      return "dev_agreement";
    case Select::kDevPearson:
      return "dev_pearson";
    case Select::kDevSpearman:
      return "dev_spearman";
    case Select::kNone:
      break;
  }
  return "none";
}

namespace {

const char* const kCounts = "train.* counts must be non-negative (log_every and eval_batch_size positive)";
const char* const kClipDecay =
    "train.max_grad_norm must be >= 0 and train.weight_decay >= 0 (or -1 for the optimizer's default)";
const char* const kCommSizes = "train.bucket_mb and train.comm_timeout must be positive, train.prefetch >= 0";
const auto non_negative = [](long v) { return v >= 0; };

void declare_schedule(OptionTable<TrainOptions>& t) {
  using O = TrainOptions;
  t.add("out_dir", &O::out_dir, "checkpoints/, metrics.jsonl and train_summary.json go here");
  t.add("batch_size", &O::batch_size, "examples per rank and step; at least the train split = full-batch steps")
      .check([](long v) { return v > 0; }, "{key} must be positive, got {value}");
  t.add("epochs", &O::epochs, "passes over the train split, when max_steps is 0");
  t.add("max_steps", &O::max_steps, "optimizer steps in all; > 0 overrides epochs").check(non_negative, kCounts);
  t.add("lr", &O::lr, "peak learning rate")
      .check([](double v) { return v > 0; }, "{key} must be positive, got {value}");
  t.add("warmup_steps", &O::warmup_steps, "linear warmup steps; 0 = 6% of the steps").check(non_negative, kCounts);
  t.add("optimizer", &O::optimizer, {OptimizerKind::kAdamW, OptimizerKind::kSgd}, "AdamW, or SGD with train.momentum");
  t.add("momentum", &O::momentum, "sgd only")
      .check([](double v) { return v >= 0 && v < 1; }, "{key} must be in [0, 1), got {value}");
  t.add("weight_decay", &O::weight_decay, "decoupled weight decay; -1 = 0.01 for adamw, 0 for sgd")
      .check([](double v) { return v >= 0 || v == -1; }, kClipDecay);
  t.add("schedule", &O::schedule, {Schedule::kLinear, Schedule::kConstant},
        "learning rate: linear (warmup, then decay to 0) or constant");
  t.add("max_grad_norm", &O::max_grad_norm, "global-norm gradient clipping; 0 = off")
      .check([](double v) { return v >= 0; }, kClipDecay);
}

void declare_run(OptionTable<TrainOptions>& t) {
  using O = TrainOptions;
  t.add("checkpoint_every", &O::checkpoint_every, "steps between checkpoints; 0 = only at the end")
      .check(non_negative, kCounts);
  t.add("keep_checkpoints", &O::keep_checkpoints, "newest checkpoints kept; 0 = all").check(non_negative, kCounts);
  t.add("log_every", &O::log_every, "steps between metrics lines").check([](long v) { return v > 0; }, kCounts);
  t.add("tensorboard", &O::tensorboard, "rank 0 writes every metrics line as TensorBoard events to out_dir/tb");
  t.add("eval_batch_size", &O::eval_batch_size, "examples per evaluation batch")
      .check([](long v) { return v > 0; }, kCounts);
  t.add("seed", &O::seed, "model init, sampling order and dropout streams derive from it");
  t.add("threads", &O::threads, "intra-op threads per rank; 0 = usable cores of the node / ranks on it")
      .check(non_negative, kCounts)
      .check([](long v) { return v <= kMaxThreads; },
             str("{key} = {value} exceeds ", kMaxThreads,
                 " threads per rank; 0 sizes the pools from the cores of the node"));
  t.add("device", &O::device, "auto, cpu, cuda or cuda:N (see GPUs)");
  t.add("precision", &O::precision, {Precision::kAuto, Precision::kFp32, Precision::kBf16},
        "bf16 = autocast (matrix products in bf16), float32 master weights; auto = bf16 on GPUs and on CPUs with "
        "AMX or AVX512-BF16, else fp32",
        "fp16 training would need loss scaling, which distill does not do");
  t.add("bucket_mb", &O::bucket_mb, "gradient bucket size after a first one of 1 MiB")
      .check([](double v) { return v > 0; }, kCommSizes);
  t.add("reduce", &O::reduce, {ReduceMode::kNonblocking, ReduceMode::kBlocking},
        "a ready bucket's allreduce: nonblocking (completes after backward) or blocking (in the hook); same sums");
  t.add("prefetch", &O::prefetch, "batches the loader thread makes ahead; 0 = none").check(non_negative, kCommSizes);
  t.add("shuffle_window", &O::shuffle_window,
        "shuffle: blocks of the data set's 1024-row chunks are permuted, then rows within windows of this many "
        "blocks (read once per window); 0 = one permutation of the whole split (random reads)")
      .check(non_negative, kCounts);
  t.add("comm_timeout", &O::comm_timeout,
        "seconds one collective may take before the watchdog ends the job (MPI and NCCL)")
      .check([](double v) { return v > 0; }, kCommSizes);
  t.add("nonfinite", &O::nonfinite, {NonFinitePolicy::kStop, NonFinitePolicy::kSkip},
        "a step with a non-finite loss or gradient norm: stop ends the job naming step, ranks, terms and example "
        "ids; skip skips the update and counts it");
  t.add("max_skipped_steps", &O::max_skipped_steps, "with nonfinite: skip, the job ends past this many skips")
      .check(non_negative, "{key} must be >= 0, got {value}");
  t.add("select", &O::select,
        {Select::kNone, Select::kDevAccuracy, Select::kDevF1, Select::kDevAgreement, Select::kDevPearson,
         Select::kDevSpearman},
        "evaluate data.eval_split at every checkpoint and keep the best by this metric as checkpoints/best "
        "(dev_agreement: with the teacher; dev_pearson, dev_spearman: regression data)");
  t.add("patience", &O::patience, "with select: stop after this many evaluations without improvement; 0 = never")
      .check(non_negative, "{key} must be >= 0, got {value}");
}

}  // namespace

const OptionTable<TrainOptions>& TrainOptions::options() {
  static const OptionTable<TrainOptions> table = [] {
    OptionTable<TrainOptions> t("train");
    declare_schedule(t);
    declare_run(t);
    return t;
  }();
  return table;
}

void TrainOptions::validate() const {
  options().check(*this);
  DISTILL_CHECK(epochs > 0 || max_steps > 0, ConfigError, "train.epochs or train.max_steps must be positive");
  DISTILL_CHECK(momentum == 0 || optimizer == OptimizerKind::kSgd, ConfigError,
                "train.momentum applies to train.optimizer: sgd");
  DISTILL_CHECK(patience == 0 || select != Select::kNone, ConfigError, "train.patience = ", patience,
                " needs train.select (the dev metric whose improvement it waits for)");
}

BucketOptions TrainOptions::buckets() const {
  BucketOptions b;
  b.bucket_bytes = static_cast<std::int64_t>(bucket_mb * (1 << 20));
  return b;
}

c10::ScalarType train_precision(const TrainOptions& o, const c10::Device& d, bool log) {
  const auto& isa = cpu_isa();
  const auto c = resolve_precision(o.precision, d.is_cuda(), isa, "train.precision");
  if (!c.warning.empty()) {
    const auto speed = cpu_bf16_speed("train.precision");  // throws where bf16 cannot run at all
    if (log) spdlog::warn("{} ({})", c.warning, speed);
  }
  if (log && !d.is_cuda())
    spdlog::info("train.precision {} -> {} on {}", name(o.precision), name(c.precision), isa.describe());
  return scalar_type(c.precision);
}

}  // namespace distill
