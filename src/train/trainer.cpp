#include "distill/train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "distill/comm/device.h"
#include "distill/data/loader.h"
#include "distill/data/sampler.h"
#include "distill/data/split_file.h"
#include "distill/kd/objective.h"
#include "distill/model/device.h"
#include "distill/train/checkpointer.h"
#include "distill/train/eval.h"
#include "distill/train/nonfinite.h"
#include "distill/train/step_log.h"
#include "distill/train/student.h"
#include "distill/util/error.h"

namespace distill {

namespace {

// What one step uses besides its batch.
struct StepParts {
  Communicator& comm;
  const TrainJob& job;
  Student& student;
  Objective& objective;
  GradReducer* reducer;  // null on one rank: its gradients are used as backward leaves them
  c10::Device device;
  c10::ScalarType precision;
};

// The split evaluated after the last step; null when there is none or it is empty.
const DataSplit* eval_split(const TrainJob& job, int rank) {
  if (!job.data->splits.count(job.eval_split)) return nullptr;
  const DataSplit* dev = &job.data->split(job.eval_split);
  if (dev->n > 0) return dev;
  if (rank == 0)
    spdlog::warn("{}: split '{}' is empty: nothing to evaluate, no dev accuracy", job.data->path, job.eval_split);
  return nullptr;
}

// One rank has nothing to average: no reducer. When the ranks span nodes, the word embeddings of a
// classifier are reduced row-sparsely (Note [row-sparse gradients]; a masked LM's decoder shares
// them, so not there).
std::unique_ptr<GradReducer> make_reducer(Communicator& grad_comm, int world, const TrainJob& job, const Student& s) {
  if (world == 1) return nullptr;
  auto b = job.opt.buckets();
  b.blocking = job.opt.reduce == ReduceMode::kBlocking;
  if (job.model.kind != ModelKind::kBertMlm && grad_comm.local_size() < grad_comm.size())
    for (std::size_t i = 0; i < s.named.size(); ++i)
      if (s.named[i].first == "bert.embeddings.word_embeddings.weight") b.row_sparse.push_back(i);
  return std::make_unique<GradReducer>(grad_comm, s.params, b);
}

LoaderOptions loader_options(const TrainJob& job, const Student& s) {
  LoaderOptions l;
  l.store_layers = s.layer_loss && !job.online_teacher;
  l.more_stores = job.more_stores;
  l.prefetch = static_cast<int>(job.opt.prefetch);
  l.wait_for_rows = job.wait_for_rows;
  return l;
}

// Float32 copies of a forward's outputs (identity for float32 tensors).
void to_float(ModelOutput& o) {
  o.logits = o.logits.to(torch::kFloat32);
  for (auto& h : o.hidden) h = h.to(torch::kFloat32);
  for (auto& a : o.attentions) a = a.to(torch::kFloat32);
  for (auto& q : o.qkv) q = {q.query.to(torch::kFloat32), q.key.to(torch::kFloat32), q.value.to(torch::kFloat32)};
}

// The student's forward pass (and the online teacher's) under autocast, then the objective in
// float32 outside it (Note [cpu bf16]: softmax, log-softmax and the losses never run in bf16).
ObjectiveTerms forward(const StepParts& s, Batch& batch) {
  const auto& ll = s.student.layer_loss;
  const bool want_h = ll && ll->wants_hidden(), want_a = ll && ll->wants_attentions();
  TeacherTargets teacher{batch.teacher_logits, batch.topk_values, batch.topk_indices, batch.topk_lse,
                         std::move(batch.teacher_layers)};
  ModelOutput out;
  std::vector<torch::Tensor> more_logits;  // further online teachers' (Note [several teachers])
  {
    Autocast cast(s.device, s.precision);
    out = s.student.model->forward(batch.inputs, want_h, want_a);
    if (s.job.online_teacher) {
      torch::NoGradGuard g;
      teacher.layers = s.job.online_teacher->forward(batch.inputs, want_h, want_a);
      for (auto* more : s.job.more_online_teachers) more_logits.push_back(more->forward(batch.inputs).logits);
    }
  }
  if (s.job.layers.attention_loss != AttentionLoss::kRelation) {  // Q/K/V serve only the relation loss
    out.qkv.clear();
    teacher.layers.qkv.clear();
  }
  to_float(out);
  if (s.job.online_teacher) {
    to_float(teacher.layers);
    teacher.logits = teacher.layers.logits;
    if (!more_logits.empty()) {
      more_logits.insert(more_logits.begin(), teacher.logits);
      for (std::size_t i = 1; i < more_logits.size(); ++i)
        DISTILL_CHECK(more_logits[i].sizes() == teacher.logits.sizes(), DataError, "teacher ", i + 1,
                      " (teacher.extra_paths) gives logits of shape ", more_logits[i].sizes(), ", teacher.path gives ",
                      teacher.logits.sizes());
      for (auto& l : more_logits) l = l.to(torch::kFloat32);
      teacher.logits = torch::stack(more_logits);
    }
  }
  return s.objective(out, teacher, batch.labels, batch.inputs.attention_mask);
}

// Backward of `loss` weighted by `share` into fresh gradients; with a reducer their buckets start
// to reduce during it (GradReducer::finish completes them).
void backward(const StepParts& s, const at::Tensor& loss, double share) {
  for (auto& p : s.student.params) p.mutable_grad() = torch::Tensor();
  if (s.reducer) s.reducer->prepare(true);
  (share == 1.0 ? loss : loss * share).backward();
}

// Collective: the step's terms averaged over the ranks into `mean`. Returns false, the update to be
// skipped, when a rank's terms or `grad_norm` are not finite and train.nonfinite lets the step be
// skipped (counted in `at`); throws when it does not (Note [non-finite steps]).
bool average_or_skip(const StepParts& s, const ObjectiveTerms& terms, double grad_norm, DistributedSampler& sampler,
                     Progress& at, StepScalars& mean) {
  const auto local = step_scalars(terms, sampler.share());
  if (average_scalars(s.comm, local, grad_norm, mean)) return true;
  const auto& o = s.job.opt;
  const auto report = nonfinite_report(s.comm.rank(), local, grad_norm, s.job.data->split(s.job.train_split),
                                       sampler.indices(at.cursor));
  handle_nonfinite_step(s.comm, report, at.step + 1, o.nonfinite == NonFinitePolicy::kSkip, o.max_skipped_steps,
                        at.skipped_steps);
  return false;
}

// Note [best checkpoint]: with train.select the dev split is evaluated at every checkpoint (every
// train.checkpoint_every steps and after the last). A strictly better value of the selected metric
// (dev accuracy, macro-F1, top-1 agreement with the teacher; Pearson or Spearman for regression) makes that checkpoint the best:
// checkpoints/best links to it and rotation keeps it. With train.patience P the run stops after P
// evaluations without improvement. The best value, its step and the count since are in every
// checkpoint, so a resumed run makes the same choices.
//
// After step `p.step`: every train.checkpoint_every steps and after the last (evaluated first,
// when there is an eval split), a checkpoint, then job.after_checkpoint. Returns true when the run
// stops early (train.patience).
bool checkpoint_if_due(const StepParts& s, Checkpointer& ckpt, StepLog& log, Progress& p, std::int64_t total,
                       const DataSplit* dev, TrainResult& res) {
  const auto& o = s.job.opt;
  const bool last = p.step == total;
  if (!last && !(o.checkpoint_every > 0 && p.step % o.checkpoint_every == 0)) return false;
  double dev_acc = -1;
  const bool select = o.select != Select::kNone;
  if (dev && (last || select)) {
    TeacherModel* teacher = o.select == Select::kDevAgreement ? s.job.eval_teacher : nullptr;
    const auto ev = evaluate(s.comm, *s.student.model, teacher, *dev, o.eval_batch_size, s.precision);
    log.after_eval(p.step, s.job.eval_split, ev);
    if (ev.regression && ev.labeled > 0) {
      res.dev_regression = ev.student_fit;
      if (s.comm.rank() == 0)
        spdlog::info("dev at step {}: MSE {:.4f}, Pearson {:.4f}, Spearman {:.4f}", p.step, ev.student_fit.mse,
                     ev.student_fit.pearson, ev.student_fit.spearman);
    } else if (ev.labeled > 0) {  // an unlabeled eval split has no accuracy
      dev_acc = ev.accuracy;
      res.dev_accuracy = dev_acc;
      if (ev.has_class_metrics) {
        res.dev_macro_f1 = ev.macro_f1;
        res.dev_mcc = ev.mcc;
      }
      if (s.comm.rank() == 0)
        spdlog::info("dev accuracy at step {}: {:.4f}{}", p.step, dev_acc,
                     ev.has_class_metrics ? fmt::format(", macro-F1 {:.4f}, MCC {:.4f}", ev.macro_f1, ev.mcc) : "");
    }
    if (select) {
      const double m = o.select == Select::kDevAccuracy  ? ev.accuracy
                       : o.select == Select::kDevF1       ? ev.macro_f1
                       : o.select == Select::kDevPearson  ? ev.student_fit.pearson
                       : o.select == Select::kDevSpearman ? ev.student_fit.spearman
                                                          : ev.agreement;
      if (m > p.best_metric) {
        p.best_metric = m;
        p.best_step = p.step;
        p.evals_since_best = 0;
      } else {
        ++p.evals_since_best;
      }
      if (s.comm.rank() == 0)
        spdlog::info("{} at step {}: {:.4f} (best {:.4f} at step {}{})", name(o.select), p.step, m, p.best_metric,
                     p.best_step,
                     p.evals_since_best > 0 ? fmt::format(", {} evaluations ago", p.evals_since_best) : "");
    }
  }
  ckpt.save(p, dev_acc);
  if (s.job.after_checkpoint) s.job.after_checkpoint(s.comm.rank(), p.step);
  res.best_step = p.best_step;
  res.best_metric = p.best_metric;
  const bool stop = !last && o.patience > 0 && p.evals_since_best >= o.patience;
  if (stop && s.comm.rank() == 0)
    spdlog::info("early stop after step {}: {} has not improved for {} evaluations (best {:.4f} at step {})", p.step,
                 name(o.select), p.evals_since_best, p.best_metric, p.best_step);
  return stop;
}

void log_start(const StepParts& s, const DistributedSampler& sampler, std::int64_t parameters, std::int64_t total) {
  spdlog::info(
      "training {} parameters on {} ranks ({}, {}) with {}: {} steps of {} examples{}, {} steps per epoch, "
      "{} gradient buckets{}",
      parameters, s.comm.size(), s.device.str(), precision_name(s.precision), name(s.job.opt.optimizer), total,
      sampler.global_batch(), sampler.full_batch() ? " (full batch)" : "", sampler.steps_per_epoch(),
      s.reducer ? s.reducer->buckets().size() : 0,
      s.reducer && !s.reducer->sparse_params().empty() ? " and the word embeddings reduced by rows" : "");
}

// The sampler over the train split (or job.rows of it), with the first epoch's order of a stream.
DistributedSampler make_sampler(const TrainJob& job, const DataSplit& split, int rank, int world) {
  const auto& o = job.opt;
  const auto n = job.rows.empty() ? split.n : static_cast<std::int64_t>(job.rows.size());
  DistributedSampler sampler(n, o.batch_size, rank, world, static_cast<std::uint64_t>(o.seed), true, split.block_rows(),
                             o.shuffle_window);
  if (!job.rows.empty()) sampler.set_rows(job.rows);
  // The loader reads a window's blocks once each (Note [lazy rows]).
  if (split.file) split.file->set_cache_blocks(static_cast<std::size_t>(o.shuffle_window) + 2);
  if (!job.first_epoch_order.empty()) sampler.set_epoch_order(0, job.first_epoch_order);
  return sampler;
}

// What a result says before the first step: the model, where it trains, and the best so far.
TrainResult start_result(const Student& student, const c10::Device& device, c10::ScalarType precision,
                         const Progress& at, const TrainOptions& o) {
  TrainResult res;
  res.parameters = parameter_count(*student.model);
  res.device = device.str();
  res.precision = precision_name(precision);
  res.best_step = at.best_step;
  res.best_metric = at.best_metric;
  // A run that train.patience stopped stays stopped when resumed.
  res.stopped_early = o.patience > 0 && at.evals_since_best >= o.patience;
  return res;
}

// The totals of a run whose steps ran from `first_step` to `p.step` in `seconds`.
void finish(TrainResult& res, const Progress& p, std::int64_t first_step, double seconds, std::int64_t global_batch,
            int rank) {
  res.steps = p.step;
  res.seconds = seconds;
  res.samples_per_s = seconds > 0 ? (p.step - first_step) * global_batch / seconds : 0;
  res.skipped_steps = p.skipped_steps;
  if (rank == 0 && p.step > first_step)
    spdlog::info("step time {:.1f} ms: waiting for input {:.1f}%, for gradient reduction after backward {:.1f}%",
                 1e3 * seconds / static_cast<double>(p.step - first_step), 100 * res.input_wait_seconds / seconds,
                 100 * res.comm_wait_seconds / seconds);
}

}  // namespace

TrainResult train(Communicator& comm, const TrainJob& job) {
  const auto started = std::chrono::steady_clock::now();
  const auto& o = job.opt;
  const DataSplit& split = job.data->split(job.train_split);
  const int rank = comm.rank(), world = comm.size();
  const auto device = resolve_device(o.device, comm.local_rank(), "train.device");
  const auto precision = train_precision(o, device, rank == 0);
  comm.check_same(precision_name(precision),
                  "train.precision as resolved (the CPUs' bf16 units or ONEDNN_MAX_CPU_ISA differ)");
  Student student(comm, job, device);
  // Gradients need a device communicator only when there are ranks to average over.
  auto device_comm = world > 1 ? make_device_communicator(comm, device, o.comm_timeout) : nullptr;
  auto sampler = make_sampler(job, split, rank, world);
  const std::int64_t total = o.max_steps > 0 ? o.max_steps : o.epochs * sampler.steps_per_epoch();
  const std::int64_t warmup = o.warmup_steps > 0 ? o.warmup_steps : std::max<std::int64_t>(1, total * 6 / 100);
  Checkpointer ckpt(comm, job, student, device, precision_name(precision));
  Progress at = ckpt.start();
  const DataSplit* dev = eval_split(job, rank);
  TrainResult res = start_result(student, device, precision, at, o);
  auto reducer = make_reducer(device_comm ? *device_comm : comm, world, job, student);
  Objective objective(job.kd, job.layers, student.layer_loss);
  const StepParts parts{comm, job, student, objective, reducer.get(), device, precision};
  if (rank == 0) log_start(parts, sampler, res.parameters, total);
  // The loader walks the same cursor sequence as the step loop (Note [exact resume]).
  Loader loader(split, sampler, job.store, loader_options(job, student), at.cursor, at.step, total);
  StepTimer timer(device, job.profile);
  StepLog log(rank, o.out_dir, total, o.log_every, sampler.global_batch(), o.tensorboard);
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t first_step = at.step;
  while (!res.stopped_early && at.step < total) {
    timer.start();
    student.model->train();
    double input_wait = 0;
    auto batch = loader.next(&input_wait);
    if (at.step == first_step)
      res.first_batch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    res.input_wait_seconds += input_wait;
    to_device(batch, device);
    timer.lap(&PhaseTimes::input);
    if (job.kd.scheduled()) objective.set_kd(job.kd.at(at.step, total));
    const auto terms = forward(parts, batch);
    timer.lap(&PhaseTimes::forward);
    backward(parts, terms.total, sampler.share());
    timer.lap(&PhaseTimes::backward);
    const double comm_wait = reducer ? reducer->finish() : 0.0;
    res.comm_wait_seconds += comm_wait;
    // The gradients are averaged: every rank computes the same norm.
    const double gnorm = clip_grad_norm(student.params, o.max_grad_norm);
    StepScalars mean;
    const bool apply = average_or_skip(parts, terms, gnorm, sampler, at, mean);
    timer.lap(&PhaseTimes::reduce);
    const double lr = o.schedule == Schedule::kConstant ? o.lr : linear_schedule(o.lr, at.step, total, warmup);
    if (apply) student.opt->step(lr);
    timer.lap(&PhaseTimes::optimizer);
    if (at.step - first_step >= job.untimed_steps) timer.add_to(res.profile, input_wait, comm_wait);
    ++at.step;
    if (at.step == first_step + 1)
      res.first_step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    at.cursor = sampler.advance(at.cursor);
    res.final_loss = mean.loss;
    log.after_step(at.step, at.cursor.epoch, mean, lr, gnorm, at.skipped_steps, input_wait, comm_wait,
                   job.kd.scheduled() ? &objective.kd() : nullptr);
    if (checkpoint_if_due(parts, ckpt, log, at, total, dev, res)) {
      res.stopped_early = true;
      break;
    }
  }
  finish(res, at, first_step, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
         sampler.global_batch(), rank);
  res.wait_seconds = loader.stream_wait_seconds();
  res.checkpoint = ckpt.dir(at.step);
  return res;
}

}  // namespace distill
