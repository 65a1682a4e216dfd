#include "distill/train/checkpointer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distill/model/device.h"
#include "distill/model/weights.h"
#include "distill/train/checkpoint.h"
#include "distill/train/step_log.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

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

TensorBlob bytes_blob(const std::string& bytes) { return {"U8", {static_cast<std::int64_t>(bytes.size())}, bytes}; }

}  // namespace

void check_resume_precision(const std::string& dir, const std::string& recorded, const std::string& requested,
                            const std::string& resolved) {
  if (recorded.empty() || recorded == resolved) return;
  const std::string why = requested == "auto"
                              ? str("train.precision: auto resolves to ", resolved, " here (", cpu_isa().describe(),
                                    "), but to ", recorded, " where the checkpoint was written")
                              : str("this run asks for train.precision: ", requested);
  throw ConfigError(str(dir, " was trained in ", recorded, "; ", why,
                        ". A run resumes exactly only in the precision it began in: resume it on a machine where "
                        "train.precision resolves to ",
                        recorded, recorded == "bf16" ? " (a GPU or a CPU with AMX or AVX512-BF16)" : "",
                        ", or start a new train.out_dir"));
}

Checkpointer::Checkpointer(Communicator& comm, const TrainJob& job, Student& student, const c10::Device& device,
                           std::string precision)
    : comm_(comm),
      job_(job),
      student_(student),
      device_(device),
      precision_(std::move(precision)),
      root_(checkpoints_dir(job.opt.out_dir)) {}

std::string Checkpointer::dir(std::int64_t step) const { return (fs::path(root_) / step_dir_name(step)).string(); }

Progress Checkpointer::start() {
  Progress p;
  if (job_.resume) resume(p);
  if (comm_.rank() == 0) {
    const auto metrics = metrics_path(job_.opt.out_dir);
    fs::create_directories(job_.opt.out_dir);
    if (p.step == 0 && path_exists(metrics)) fs::remove(metrics);
    truncate_metrics(metrics, p.step);
  }
  return p;
}

void Checkpointer::resume(Progress& p) {
  const int rank = comm_.rank(), world = comm_.size();
  auto ck = load_latest_checkpoint(root_);
  if (!ck) {
    if (rank == 0) spdlog::warn("--resume: no checkpoint under {}, starting from step 0", root_);
    return;
  }
  const auto& s = ck->state;
  DISTILL_CHECK(s.world_size == world, ConfigError, ck->dir, " was written by ", s.world_size,
                " student ranks; resume it with the same number (this run has ", world, ")");
  DISTILL_CHECK(s.config_hash == job_.config_hash, ConfigError, ck->dir, " was written with config ", s.config_hash,
                ", this run's config is ", job_.config_hash,
                "; resume with the same config or start a new train.out_dir");
  // Checkpoints before precisions were recorded: the CPU trained in fp32 whatever was asked.
  const std::string recorded = s.precision.empty() && !device_.is_cuda() ? "fp32" : s.precision;
  check_resume_precision(ck->dir, recorded, name(job_.opt.precision), precision_);
  DISTILL_CHECK(s.dataset_hash == job_.data->content_hash, DataError, ck->dir, " was trained on data set ",
                s.dataset_hash, ", this run's is ", job_.data->content_hash);
  // The teachers' weights, not only their paths (in the config): a retrained teacher is another.
  DISTILL_CHECK(s.teacher_fingerprint.empty() || s.teacher_fingerprint == job_.teacher_fingerprint, ConfigError,
                ck->dir, " was trained from teacher(s) ", s.teacher_fingerprint, ", this run's are ",
                job_.teacher_fingerprint.empty() ? "none" : job_.teacher_fingerprint,
                "; resume with the same teachers or start a new train.out_dir");
  load_module(*student_.model, ck->model.tensors, ck->dir + "/model.safetensors");
  if (student_.layer_loss)
    load_module(*student_.layer_loss, ck->projections.tensors, ck->dir + "/projections.safetensors");
  student_.opt->load_state(ck->optimizer.tensors, ck->dir + "/optimizer.safetensors");
  auto it = ck->rng.tensors.find("rank" + std::to_string(rank));
  DISTILL_CHECK(it != ck->rng.tensors.end(), DataError, ck->dir, "/rng.safetensors lacks rank", rank);
  set_generator_state(c10::Device(c10::kCPU), it->second.bytes);
  auto cuda = ck->rng.tensors.find("rank" + std::to_string(rank) + ".cuda");
  if (device_.is_cuda() && cuda != ck->rng.tensors.end()) set_generator_state(device_, cuda->second.bytes);
  p.step = s.step;
  p.cursor = {s.epoch, s.epoch_step};
  p.best_metric = s.best_metric;
  p.best_step = s.best_step;
  p.evals_since_best = s.evals_since_best;
  p.skipped_steps = s.skipped_steps;
  if (rank == 0)
    spdlog::info("resumed from {} at step {} (epoch {}, position {})", ck->dir, p.step, p.cursor.epoch, p.cursor.step);
}

void Checkpointer::save(const Progress& p, double dev_accuracy) {
  const int rank = comm_.rank(), world = comm_.size();
  // Note [non-finite steps]: a checkpoint holds finite weights only, so rotation never replaces
  // the last finite one with a broken one.
  std::string bad;
  {
    torch::NoGradGuard g;
    for (const auto& [name, w] : student_.named)
      if (bad.empty() && !torch::isfinite(w).all().item<bool>()) bad = name;
  }
  DISTILL_CHECK(!comm_.any(!bad.empty()), DataError, "non-finite weights after step ", p.step,
                bad.empty() ? std::string() : str(" (", bad, " on rank ", rank, ")"),
                "; the checkpoint is not written, the last one under ", root_,
                " is kept; lower train.lr or set train.max_grad_norm");
  // Every rank contributes its generator state (collective), rank 0 writes.
  auto states = comm_.allgather_string(generator_state(c10::Device(c10::kCPU)));
  auto cuda_states = comm_.allgather_string(device_.is_cuda() ? generator_state(device_) : std::string());
  if (rank != 0) return;
  Checkpoint c;
  c.state = {p.step,
             p.cursor.epoch,
             p.cursor.step,
             job_.opt.select == Select::kNone ? std::max(p.best_metric, dev_accuracy) : p.best_metric,
             world,
             job_.config_yaml,
             job_.config_hash,
             job_.data->content_hash,
             job_.teacher_fingerprint,
             p.skipped_steps,
             precision_};
  c.model.tensors = module_blobs(*student_.model);
  c.model.metadata = {{"format", "pt"}, {"distill.model_config", to_json(job_.model).dump()}};
  c.optimizer.tensors = student_.opt->state();
  if (student_.layer_loss) c.projections.tensors = module_blobs(*student_.layer_loss);
  for (int r = 0; r < world; ++r) {
    c.rng.tensors["rank" + std::to_string(r)] = bytes_blob(states[r]);
    if (!cuda_states[r].empty()) c.rng.tensors["rank" + std::to_string(r) + ".cuda"] = bytes_blob(cuda_states[r]);
  }
  c.state.best_step = p.best_step;
  c.state.evals_since_best = p.evals_since_best;
  save_checkpoint(root_, c, static_cast<int>(job_.opt.keep_checkpoints));
}

}  // namespace distill
