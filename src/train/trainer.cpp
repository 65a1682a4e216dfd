#include "distill/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distill/data/sampler.h"
#include "distill/model/weights.h"
#include "distill/data/batch.h"
#include "distill/train/checkpoint.h"
#include "distill/train/eval.h"
#include "distill/train/nonfinite.h"
#include "distill/data/prefetch.h"
#include "distill/comm/device.h"
#include "distill/model/device.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

void broadcast_params(Communicator& comm, torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) comm.broadcast(p.data_ptr<float>(), p.numel(), DType::kFloat32, 0);
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

constexpr const char* kScalarNames[5] = {"loss", "hard_ce", "soft_kl", "hidden", "attention"};

// Test hook: DISTILL_FAULT_KILL_AT_STEP=k ends rank 0 with SIGKILL right after step k's checkpoint.
void maybe_fault(int rank, std::int64_t step) {
  const char* v = std::getenv("DISTILL_FAULT_KILL_AT_STEP");
  if (v && rank == 0 && std::atoll(v) == step) std::raise(SIGKILL);
}

}  // namespace

TrainResult train(Communicator& comm, const TrainJob& job) {
  const auto& o = job.opt;
  const DataSplit& split = job.data->split(job.train_split);
  const int rank = comm.rank(), world = comm.size();

  const auto device = resolve_device(o.device, comm.local_rank(), "train.device");
  const auto precision = train_precision(o, device);
  torch::manual_seed(static_cast<std::uint64_t>(o.seed));
  Network model = make_network(job.model);
  if (job.init) job.init(*model);
  broadcast_params(comm, *model);
  // Note [layer projections]: trained, reduced and checkpointed with the student, saved apart
  // (projections.safetensors) so model.safetensors stays a plain HF model.
  LayerLoss layer_loss{nullptr};
  const bool stored_layers = job.store && job.store->manifest().meta.has_layers();
  if (!job.layers.hidden_map.empty() || !job.layers.attention_map.empty()) {
    ModelConfig tc;
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
  // Note [devices]: weights are made and broadcast on the host, then moved.
  model->to(device);
  if (layer_loss) layer_loss->to(device);
  // Gradients need a device communicator only when there are ranks to average over.
  auto device_comm = world > 1 ? make_device_communicator(comm, device, o.comm_timeout) : nullptr;
  Communicator& grad_comm = device_comm ? *device_comm : comm;

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

  TrainResult res;
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
      set_generator_state(c10::Device(c10::kCPU), it->second.bytes);
      auto cuda = ck->rng.tensors.find("rank" + std::to_string(rank) + ".cuda");
      if (device.is_cuda() && cuda != ck->rng.tensors.end()) set_generator_state(device, cuda->second.bytes);
      step = s.step;
      cursor = {s.epoch, s.epoch_step};
      best = s.best_metric;
      res.skipped_steps = s.skipped_steps;
      if (rank == 0) spdlog::info("resumed from {} at step {} (epoch {}, position {})", ck->dir, step, cursor.epoch, cursor.step);
    }
  }
  if (rank == 0) {
    fs::create_directories(o.out_dir);
    if (step == 0 && path_exists(metrics_path)) fs::remove(metrics_path);
    truncate_metrics(metrics_path, step);
  }

  const DataSplit* dev = job.data->splits.count(job.eval_split) ? &job.data->split(job.eval_split) : nullptr;
  if (dev && dev->n == 0) {
    if (rank == 0) spdlog::warn("{}: split '{}' is empty: nothing to evaluate, no dev accuracy", job.data->path, job.eval_split);
    dev = nullptr;
  }
  auto save = [&](double dev_acc) {
    // Note [non-finite steps]: a checkpoint holds finite weights only, so rotation never replaces
    // the last finite one with a broken one.
    std::string bad;
    {
      torch::NoGradGuard g;
      for (const auto& [name, p] : named)
        if (bad.empty() && !torch::isfinite(p).all().item<bool>()) bad = name;
    }
    DISTILL_CHECK(!comm.any(!bad.empty()), DataError, "non-finite weights after step ", step,
                  bad.empty() ? std::string() : str(" (", bad, " on rank ", rank, ")"),
                  "; the checkpoint is not written, the last one under ", ckpt_root,
                  " is kept; lower train.lr or set train.max_grad_norm");
    // Every rank contributes its generator state (collective), rank 0 writes.
    auto states = comm.allgather_string(generator_state(c10::Device(c10::kCPU)));
    auto cuda_states = comm.allgather_string(device.is_cuda() ? generator_state(device) : std::string());
    if (rank != 0) return;
    Checkpoint c;
    c.state = {step, cursor.epoch, cursor.step, std::max(best, dev_acc), world,
               job.config_yaml, job.config_hash, job.data->content_hash, job.teacher_fingerprint};
    c.state.skipped_steps = res.skipped_steps;
    c.model.tensors = module_blobs(*model);
    c.model.metadata = {{"format", "pt"}, {"distill.model_config", to_json(job.model).dump()}};
    c.optimizer.tensors = opt->state();
    if (layer_loss) c.projections.tensors = module_blobs(*layer_loss);
    for (int r = 0; r < world; ++r) {
      c.rng.tensors["rank" + std::to_string(r)] = {"U8", {static_cast<std::int64_t>(states[r].size())}, states[r]};
      if (!cuda_states[r].empty())
        c.rng.tensors["rank" + std::to_string(r) + ".cuda"] = {"U8", {static_cast<std::int64_t>(cuda_states[r].size())},
                                                               cuda_states[r]};
    }
    save_checkpoint(ckpt_root, c, static_cast<int>(o.keep_checkpoints));
  };

  res.parameters = parameter_count(*model);
  res.device = device.str();
  // One rank has nothing to average: its gradients are used as backward leaves them.
  std::unique_ptr<GradReducer> reducer;
  if (world > 1) {
    auto b = o.buckets();
    b.blocking = o.reduce == "blocking";
    reducer = std::make_unique<GradReducer>(grad_comm, params, b);
  }
  if (rank == 0)
    spdlog::info("training {} parameters on {} ranks ({}, {}) with {}: {} steps of {} examples{}, {} steps per epoch, "
                 "{} gradient buckets",
                 res.parameters, world, device.str(), precision_name(precision), o.optimizer, total, global_batch,
                 full_batch ? " (full batch)" : "", per_epoch, reducer ? reducer->buckets().size() : 0);
  // The loader thread walks the same cursor sequence as the step loop (Note [exact resume]).
  const bool want_h = layer_loss && layer_loss->wants_hidden(), want_a = layer_loss && layer_loss->wants_attentions();
  const bool store_layers = layer_loss && !job.online_teacher;
  std::atomic<double> stream_wait{0};
  Cursor load_cursor = cursor;
  auto produce = [&, load_cursor](std::int64_t) mutable {
    auto rows = full_batch ? block : sampler.indices(load_cursor);
    if (job.wait_for_rows) stream_wait.store(stream_wait.load() + job.wait_for_rows(load_cursor.epoch, rows));
    auto b = make_batch(split, rows, job.store, store_layers);
    load_cursor = full_batch ? Cursor{load_cursor.epoch + 1, 0} : sampler.advance(load_cursor);
    return b;
  };
  std::unique_ptr<Prefetcher> loader;
  if (o.prefetch > 0) loader = std::make_unique<Prefetcher>(produce, step, total, static_cast<int>(o.prefetch));
  auto t0 = std::chrono::steady_clock::now();
  auto window_start = t0;
  const std::int64_t first_step = step;
  std::int64_t window_steps = 0;
  double last_loss = 0;
  while (step < total) {
    const auto step_start = std::chrono::steady_clock::now();
    // Profile of the step (with job.profile): seconds since the last lap.
    auto mark = step_start;
    double laps[5] = {0, 0, 0, 0, 0};  // input, forward, backward, reduce, optimizer
    auto lap = [&](int k) {
      if (!job.profile) return;
      synchronize(device);
      const auto now = std::chrono::steady_clock::now();
      laps[k] = std::chrono::duration<double>(now - mark).count();
      mark = now;
    };
    model->train();
    double input_wait = 0;
    auto batch = loader ? loader->next(&input_wait) : produce(step);
    res.input_wait_seconds += input_wait;
    to_device(batch, device);
    lap(0);
    ModelOutput out;
    ModelOutput tout = std::move(batch.teacher_layers);
    LossTerms terms;
    LayerLossTerms lt;
    {
      Autocast cast(device, precision);
      out = model->forward(batch.inputs, want_h, want_a);
      if (job.online_teacher) {
        torch::NoGradGuard g;
        tout = job.online_teacher->forward(batch.inputs, want_h, want_a);
        batch.teacher_logits = tout.logits;
      }
      out.logits = out.logits.to(torch::kFloat32);
      terms = batch.topk_values.defined()
                  ? topk_kd_loss(out.logits, batch.topk_values, batch.topk_indices, batch.topk_lse, batch.labels, job.kd)
                  : kd_loss(out.logits, batch.teacher_logits, batch.labels, job.kd);
      if (layer_loss) {
        lt = layer_loss->forward(out, tout, batch.inputs.attention_mask);
        if (lt.hidden.defined()) terms.total = terms.total + job.layers.hidden_weight * lt.hidden;
        if (lt.attention.defined()) terms.total = terms.total + job.layers.attention_weight * lt.attention;
      }
    }
    lap(1);
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    if (reducer) reducer->prepare(true);
    (share == 1.0 ? terms.total : terms.total * share).backward();
    lap(2);
    const double comm_wait = reducer ? reducer->finish() : 0.0;
    res.comm_wait_seconds += comm_wait;
    // The gradients are averaged: every rank computes the same norm.
    const double gnorm = clip_grad_norm(params, o.max_grad_norm);
    // The step's scalars, averaged as float32 like the gradients, and a non-finite flag
    // (Note [non-finite steps]): every rank takes the same decision.
    float sc[6] = {0, 0, 0, 0, 0, 0};
    {
      auto zero = torch::zeros({}, terms.total.options());
      auto parts = torch::stack({terms.total.detach(), terms.hard_ce.detach(),
                                 terms.soft_kl.defined() ? terms.soft_kl.detach() : zero,
                                 lt.hidden.defined() ? lt.hidden.detach() : zero,
                                 lt.attention.defined() ? lt.attention.detach() : zero})
                       .to(torch::kCPU, torch::kFloat32);
      std::memcpy(sc, parts.data_ptr<float>(), 5 * sizeof(float));
    }
    if (share != 1.0)
      for (int k = 0; k < 5; ++k) sc[k] = static_cast<float>(sc[k] * share);
    float local[5];
    std::memcpy(local, sc, sizeof(local));
    bool finite = std::isfinite(gnorm);
    for (int k = 0; k < 5; ++k) finite = finite && std::isfinite(sc[k]);
    sc[5] = finite ? 0.0f : 1.0f;
    comm.allreduce(sc, 6, DType::kFloat32, ReduceOp::kAverage);
    std::vector<double> scalars(sc, sc + 5);
    bool apply = true;
    if (sc[5] != 0.0f || !std::isfinite(sc[0])) {
      const auto report = nonfinite_report(rank, local, kScalarNames, 5, gnorm, split,
                                           full_batch ? block : sampler.indices(cursor));
      handle_nonfinite_step(comm, report, step + 1, o.nonfinite == "skip", o.max_skipped_steps, res.skipped_steps);
      apply = false;
    }
    lap(3);
    const double lr = o.schedule == "constant" ? o.lr : linear_schedule(o.lr, step, total, warmup);
    if (apply) opt->step(lr);
    lap(4);
    if (step - first_step >= job.untimed_steps) {
      synchronize(device);
      for (int k = 0; k < 5; ++k) res.phase_seconds[k] += laps[k];
      ++res.timed_steps;
      res.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      res.timed_input_wait += input_wait;
      res.timed_comm_wait += comm_wait;
    }
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
      if (res.skipped_steps > 0) line["skipped_steps"] = res.skipped_steps;
      if (terms.soft_kl.defined()) line["soft_kl"] = scalars[2];
      if (lt.hidden.defined()) line["hidden"] = scalars[3];
      if (lt.attention.defined()) line["attention"] = scalars[4];
      append_line(metrics_path, line.dump() + "\n");
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
        dev_acc = evaluate(comm, *model, nullptr, *dev, o.eval_batch_size, precision).accuracy;
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
  res.wait_seconds = stream_wait.load();
  if (rank == 0 && step > first_step)
    spdlog::info("step time {:.1f} ms: waiting for input {:.1f}%, for gradient reduction after backward {:.1f}%",
                 1e3 * el / static_cast<double>(step - first_step), 100 * res.input_wait_seconds / el,
                 100 * res.comm_wait_seconds / el);
  res.checkpoint = (fs::path(ckpt_root) / step_dir_name(step)).string();
  return res;
}

}  // namespace distill
