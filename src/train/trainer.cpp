#include "distill/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distill/data/sampler.h"
#include "distill/model/bert.h"
#include "distill/model/weights.h"
#include "distill/train/batch.h"
#include "distill/train/checkpoint.h"
#include "distill/train/eval.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

namespace fs = std::filesystem;

void TrainOptions::validate() const {
  DISTILL_CHECK(batch_size > 0, ConfigError, "train.batch_size must be positive, got ", batch_size);
  DISTILL_CHECK(epochs > 0 || max_steps > 0, ConfigError, "train.epochs or train.max_steps must be positive");
  DISTILL_CHECK(lr > 0, ConfigError, "train.lr must be positive, got ", lr);
  DISTILL_CHECK(warmup_steps >= 0 && checkpoint_every >= 0 && keep_checkpoints >= 0 && log_every > 0 &&
                    max_steps >= 0 && threads >= 0 && eval_batch_size > 0,
                ConfigError, "train.* counts must be non-negative (log_every and eval_batch_size positive)");
  DISTILL_CHECK(max_grad_norm >= 0 && (weight_decay >= 0 || weight_decay == -1), ConfigError,
                "train.max_grad_norm must be >= 0 and train.weight_decay >= 0 (or -1 for the optimizer's default)");
  DISTILL_CHECK(optimizer == "adamw" || optimizer == "sgd", ConfigError, "train.optimizer = '", optimizer,
                "', expected adamw or sgd");
  DISTILL_CHECK(momentum >= 0 && momentum < 1, ConfigError, "train.momentum must be in [0, 1), got ", momentum);
  DISTILL_CHECK(momentum == 0 || optimizer == "sgd", ConfigError, "train.momentum applies to train.optimizer: sgd");
  DISTILL_CHECK(schedule == "linear" || schedule == "constant", ConfigError, "train.schedule = '", schedule,
                "', expected linear or constant");
}

namespace {

// Flattens every gradient plus `extra` scalars into one buffer, averages it over the ranks, and
// copies it back (Note [collectives]).
void allreduce_grads(Communicator& comm, const std::vector<torch::Tensor>& params, std::vector<double>& extra) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) parts.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}));
  parts.push_back(torch::tensor(std::vector<float>(extra.begin(), extra.end())));
  auto flat = torch::cat(parts).contiguous();
  comm.allreduce(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()), DType::kFloat32, ReduceOp::kAverage);
  std::int64_t off = 0;
  torch::NoGradGuard g;
  for (const auto& p : params) {
    auto view = flat.narrow(0, off, p.numel()).view(p.sizes());
    if (p.grad().defined()) p.grad().copy_(view);
    else p.mutable_grad() = view.clone();
    off += p.numel();
  }
  for (std::size_t i = 0; i < extra.size(); ++i) extra[i] = flat[off + static_cast<std::int64_t>(i)].item<float>();
}

void broadcast_params(Communicator& comm, torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) comm.broadcast(p.data_ptr<float>(), p.numel(), DType::kFloat32, 0);
}

std::string rng_state_bytes() {
  auto s = at::detail::getDefaultCPUGenerator().get_state();
  return std::string(static_cast<const char*>(s.data_ptr()), s.numel());
}

void set_rng_state_bytes(const std::string& b) {
  auto t = torch::empty({static_cast<std::int64_t>(b.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), b.data(), b.size());
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  gen.set_state(t);
}

// Keeps only metrics lines with step <= `step` (a resumed run rewrites what follows).
void truncate_metrics(const std::string& path, std::int64_t step) {
  if (!path_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).at("step").get<std::int64_t>() <= step) kept += line + "\n";
    } catch (const std::exception&) {
      // a torn last line from a crash is dropped
    }
  }
  write_file_atomic(path, kept);
}

// Test hook: DISTILL_FAULT_KILL_AT_STEP=k ends rank 0 with SIGKILL right after step k's checkpoint.
void maybe_fault(int rank, std::int64_t step) {
  const char* v = std::getenv("DISTILL_FAULT_KILL_AT_STEP");
  if (v && rank == 0 && std::atoll(v) == step) std::raise(SIGKILL);
}

}  // namespace

TrainResult train(Communicator& comm, const TrainJob& job) {
  const auto& o = job.opt;
  const TokenSplit& split = job.data->split(job.train_split);
  const int rank = comm.rank(), world = comm.size();

  torch::manual_seed(static_cast<std::uint64_t>(o.seed));
  Network model = make_network(job.model);
  if (job.init) job.init(*model);
  broadcast_params(comm, *model);
  // Note [layer projections]: trained, reduced and checkpointed with the student, saved apart
  // (projections.safetensors) so model.safetensors stays a plain HF model.
  LayerLoss layer_loss{nullptr};
  const bool stored_layers = job.store && job.store->manifest().meta.has_layers();
  if (!job.layers.hidden_map.empty() || !job.layers.attention_map.empty()) {
    BertConfig tc;
    if (job.online_teacher && job.online_teacher->config()) {
      tc = *job.online_teacher->config();
    } else {
      DISTILL_CHECK(stored_layers, ConfigError, "layer maps need the teacher's layers: an online BERT teacher "
                    "(teacher.online: true) or a store precomputed with the same distill.hidden_map/attention_map");
      const auto& m = job.store->manifest().meta;
      tc.layers = m.teacher_layers;
      tc.hidden = m.hidden_size;
      tc.heads = m.heads;
    }
    DISTILL_CHECK(job.model.kind == "bert" && tc.kind == "bert", ConfigError, "layer maps need BERT classifiers as "
                  "student and teacher; the student is a ", job.model.kind, ", the teacher a ", tc.kind);
    layer_loss = LayerLoss(job.layers, job.model, tc);
    if (!(job.online_teacher && job.online_teacher->config())) {
      const auto& m = job.store->manifest().meta;
      for (long l : teacher_layers_of(layer_loss->hidden_map()))
        DISTILL_CHECK(std::count(m.hidden_layers.begin(), m.hidden_layers.end(), l), ConfigError,
                      "distill.hidden_map needs teacher hidden state ", l, ", which the store does not hold; "
                      "precompute with this map into a new store.path");
      for (long l : teacher_layers_of(layer_loss->attention_map()))
        DISTILL_CHECK(std::count(m.attention_layers.begin(), m.attention_layers.end(), l), ConfigError,
                      "distill.attention_map needs teacher attention layer ", l, ", which the store does not hold; "
                      "precompute with this map into a new store.path");
    }
    broadcast_params(comm, *layer_loss);
  }
  torch::manual_seed(mix_seed(static_cast<std::uint64_t>(o.seed), 0x5eed, static_cast<std::uint64_t>(rank)));

  std::vector<std::pair<std::string, torch::Tensor>> named;
  std::vector<torch::Tensor> params;
  for (auto& p : model->named_parameters()) {
    named.emplace_back(p.key(), p.value());
    params.push_back(p.value());
  }
  if (layer_loss)
    for (auto& p : layer_loss->named_parameters()) {
      named.emplace_back("distill.projections." + p.key(), p.value());
      params.push_back(p.value());
    }
  std::unique_ptr<Optimizer> opt;
  if (o.optimizer == "sgd") opt = std::make_unique<Sgd>(named, o.momentum, o.effective_weight_decay());
  else opt = std::make_unique<AdamW>(named, OptimOptions{0.9, 0.999, 1e-8, o.effective_weight_decay()});
  DistributedSampler sampler(split.n, o.batch_size, rank, world, static_cast<std::uint64_t>(o.seed));
  // Full batch: rank r takes rows [n r / W, n (r + 1) / W); its mean loss is weighted by its share
  // so that the averaged gradient is exactly the gradient of the mean over all n examples.
  const bool full_batch = o.batch_size >= split.n;
  std::vector<std::int64_t> block;
  for (std::int64_t i = split.n * rank / world; i < split.n * (rank + 1) / world; ++i) block.push_back(i);
  DISTILL_CHECK(!full_batch || !block.empty(), ConfigError, "full-batch training of ", split.n,
                " examples on ", world, " ranks leaves rank ", rank, " without examples; use fewer ranks");
  const double share = full_batch ? static_cast<double>(block.size()) * world / static_cast<double>(split.n) : 1.0;
  if (!job.first_epoch_order.empty()) sampler.set_epoch_order(0, job.first_epoch_order);
  const std::int64_t per_epoch = full_batch ? 1 : sampler.steps_per_epoch();
  const std::int64_t global_batch = full_batch ? split.n : o.batch_size * world;
  const std::int64_t total = o.max_steps > 0 ? o.max_steps : o.epochs * per_epoch;
  const std::int64_t warmup = o.warmup_steps > 0 ? o.warmup_steps : std::max<std::int64_t>(1, total * 6 / 100);
  const std::string ckpt_root = (fs::path(o.out_dir) / "checkpoints").string();
  const std::string metrics_path = (fs::path(o.out_dir) / "metrics.jsonl").string();

  Cursor cursor;
  std::int64_t step = 0;
  double best = -1;
  if (job.resume) {
    auto ck = load_latest_checkpoint(ckpt_root);
    if (!ck) {
      if (rank == 0) spdlog::warn("--resume: no checkpoint under {}, starting from step 0", ckpt_root);
    } else {
      const auto& s = ck->state;
      DISTILL_CHECK(s.world_size == world, ConfigError, ck->dir, " was written by ", s.world_size,
                    " student ranks; resume it with the same number (this run has ", world, ")");
      DISTILL_CHECK(s.config_hash == job.config_hash, ConfigError, ck->dir, " was written with config ",
                    s.config_hash, ", this run's config is ", job.config_hash,
                    "; resume with the same config or start a new train.out_dir");
      DISTILL_CHECK(s.dataset_hash == job.data->content_hash, DataError, ck->dir, " was trained on data set ",
                    s.dataset_hash, ", this run's is ", job.data->content_hash);
      load_module(*model, ck->model.tensors, ck->dir + "/model.safetensors");
      if (layer_loss) load_module(*layer_loss, ck->projections.tensors, ck->dir + "/projections.safetensors");
      opt->load_state(ck->optimizer.tensors, ck->dir + "/optimizer.safetensors");
      auto it = ck->rng.tensors.find("rank" + std::to_string(rank));
      DISTILL_CHECK(it != ck->rng.tensors.end(), DataError, ck->dir, "/rng.safetensors lacks rank", rank);
      set_rng_state_bytes(it->second.bytes);
      step = s.step;
      cursor = {s.epoch, s.epoch_step};
      best = s.best_metric;
      if (rank == 0) spdlog::info("resumed from {} at step {} (epoch {}, position {})", ck->dir, step, cursor.epoch, cursor.step);
    }
  }
  if (rank == 0) {
    fs::create_directories(o.out_dir);
    if (step == 0 && path_exists(metrics_path)) fs::remove(metrics_path);
    truncate_metrics(metrics_path, step);
  }
  std::ofstream metrics;
  if (rank == 0) metrics.open(metrics_path, std::ios::app);

  const TokenSplit* dev = job.data->splits.count(job.eval_split) ? &job.data->split(job.eval_split) : nullptr;
  auto save = [&](double dev_acc) {
    // Every rank contributes its generator state (collective), rank 0 writes.
    auto states = comm.allgather_string(rng_state_bytes());
    if (rank != 0) return;
    Checkpoint c;
    c.state = {step, cursor.epoch, cursor.step, std::max(best, dev_acc), world,
               job.config_yaml, job.config_hash, job.data->content_hash, job.teacher_fingerprint};
    c.model.tensors = module_blobs(*model);
    c.model.metadata = {{"format", "pt"}, {"distill.model_config", to_json(job.model).dump()}};
    c.optimizer.tensors = opt->state();
    if (layer_loss) c.projections.tensors = module_blobs(*layer_loss);
    for (int r = 0; r < world; ++r) c.rng.tensors["rank" + std::to_string(r)] = {"U8", {static_cast<std::int64_t>(states[r].size())}, states[r]};
    save_checkpoint(ckpt_root, c, static_cast<int>(o.keep_checkpoints));
  };

  TrainResult res;
  res.parameters = parameter_count(*model);
  if (rank == 0)
    spdlog::info("training {} parameters on {} ranks with {}: {} steps of {} examples{}, {} steps per epoch",
                 res.parameters, world, o.optimizer, total, global_batch, full_batch ? " (full batch)" : "", per_epoch);
  auto t0 = std::chrono::steady_clock::now();
  auto window_start = t0;
  const std::int64_t first_step = step;
  std::int64_t window_steps = 0;
  double last_loss = 0;
  while (step < total) {
    model->train();
    auto rows = full_batch ? block : sampler.indices(cursor);
    if (job.wait_for_rows) res.wait_seconds += job.wait_for_rows(cursor.epoch, rows);
    auto batch = make_batch(split, rows, job.store, layer_loss && !job.online_teacher);
    const bool want_h = layer_loss && layer_loss->wants_hidden(), want_a = layer_loss && layer_loss->wants_attentions();
    auto out = model->forward(batch.inputs, want_h, want_a);
    BertOutput tout = std::move(batch.teacher_layers);
    if (job.online_teacher) {
      torch::NoGradGuard g;
      tout = job.online_teacher->forward(batch.inputs, want_h, want_a);
      batch.teacher_logits = tout.logits;
    }
    auto terms = batch.topk_values.defined()
                     ? topk_kd_loss(out.logits, batch.topk_values, batch.topk_indices, batch.topk_lse, batch.labels, job.kd)
                     : kd_loss(out.logits, batch.teacher_logits, batch.labels, job.kd);
    LayerLossTerms lt;
    if (layer_loss) {
      lt = layer_loss->forward(out, tout, batch.inputs.attention_mask);
      if (lt.hidden.defined()) terms.total = terms.total + job.layers.hidden_weight * lt.hidden;
      if (lt.attention.defined()) terms.total = terms.total + job.layers.attention_weight * lt.attention;
    }
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    (share == 1.0 ? terms.total : terms.total * share).backward();
    std::vector<double> scalars = {terms.total.item<double>(), terms.hard_ce.item<double>(),
                                   terms.soft_kl.defined() ? terms.soft_kl.item<double>() : 0.0,
                                   lt.hidden.defined() ? lt.hidden.item<double>() : 0.0,
                                   lt.attention.defined() ? lt.attention.item<double>() : 0.0};
    for (auto& v : scalars) v *= share;
    allreduce_grads(comm, params, scalars);
    const double gnorm = clip_grad_norm(params, o.max_grad_norm);
    const double lr = o.schedule == "constant" ? o.lr : linear_schedule(o.lr, step, total, warmup);
    opt->step(lr);
    ++step;
    ++window_steps;
    cursor = full_batch ? Cursor{cursor.epoch + 1, 0} : sampler.advance(cursor);
    last_loss = scalars[0];
    if (rank == 0 && (step % o.log_every == 0 || step == total)) {
      auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - window_start).count();
      const double sps = dt > 0 ? window_steps * global_batch / dt : 0;
      nlohmann::json line = {{"step", step}, {"epoch", cursor.epoch}, {"loss", scalars[0]}, {"hard_ce", scalars[1]},
                             {"lr", lr}, {"grad_norm", gnorm}, {"samples_per_s", sps}};
      if (terms.soft_kl.defined()) line["soft_kl"] = scalars[2];
      if (lt.hidden.defined()) line["hidden"] = scalars[3];
      if (lt.attention.defined()) line["attention"] = scalars[4];
      metrics << line.dump() << "\n" << std::flush;
      spdlog::info("step {}/{} loss {:.4f} ce {:.4f}{}{}{} lr {:.2e} {:.0f} samples/s", step, total, scalars[0],
                   scalars[1], terms.soft_kl.defined() ? fmt::format(" kd {:.4f}", scalars[2]) : "",
                   lt.hidden.defined() ? fmt::format(" hidden {:.4f}", scalars[3]) : "",
                   lt.attention.defined() ? fmt::format(" attention {:.4f}", scalars[4]) : "", lr, sps);
      window_start = now;
      window_steps = 0;
    }
    const bool last = step == total;
    if (last || (o.checkpoint_every > 0 && step % o.checkpoint_every == 0)) {
      double dev_acc = -1;
      if (last && dev) {
        dev_acc = evaluate(comm, *model, nullptr, *dev, o.eval_batch_size).accuracy;
        res.dev_accuracy = dev_acc;
        if (rank == 0) spdlog::info("dev accuracy at step {}: {:.4f}", step, dev_acc);
      }
      save(dev_acc);
      maybe_fault(rank, step);
    }
  }
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.steps = step;
  res.seconds = el;
  res.final_loss = last_loss;
  res.samples_per_s = el > 0 ? (step - first_step) * global_batch / el : 0;
  res.checkpoint = (fs::path(ckpt_root) / step_dir_name(step)).string();
  return res;
}

}  // namespace distill
