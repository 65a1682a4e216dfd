#include "distill/train/step_log.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/model/device.h"
#include "distill/train/nonfinite.h"
#include "distill/util/fs.h"

namespace distill {

StepScalars step_scalars(const ObjectiveTerms& t, double share) {
  float sc[5];
  auto zero = torch::zeros({}, t.total.options());
  auto parts =
      torch::stack({t.total.detach(), t.hard_ce.detach(), t.soft_kl.defined() ? t.soft_kl.detach() : zero,
                    t.hidden.defined() ? t.hidden.detach() : zero, t.attention.defined() ? t.attention.detach() : zero})
          .to(torch::kCPU, torch::kFloat32);
  std::memcpy(sc, parts.data_ptr<float>(), sizeof(sc));
  if (share != 1.0)
    for (float& v : sc) v = static_cast<float>(v * share);
  return {sc[0], sc[1], sc[2], sc[3], sc[4], t.soft_kl.defined(), t.hidden.defined(), t.attention.defined()};
}

bool average_scalars(Communicator& comm, const StepScalars& local, double grad_norm, StepScalars& mean) {
  // The terms are float32 values already: the conversions are exact.
  float sc[6] = {static_cast<float>(local.loss),      static_cast<float>(local.hard_ce),
                 static_cast<float>(local.soft_kl),   static_cast<float>(local.hidden),
                 static_cast<float>(local.attention), 0.0f};
  bool finite = std::isfinite(grad_norm);
  for (int k = 0; k < 5; ++k) finite = finite && std::isfinite(sc[k]);
  sc[5] = finite ? 0.0f : 1.0f;
  comm.allreduce(sc, 6, DType::kFloat32, ReduceOp::kAverage);
  mean = local;
  mean.loss = sc[0];
  mean.hard_ce = sc[1];
  mean.soft_kl = sc[2];
  mean.hidden = sc[3];
  mean.attention = sc[4];
  return sc[5] == 0.0f && std::isfinite(sc[0]);
}

std::string nonfinite_report(int rank, const StepScalars& local, double grad_norm, const DataSplit& split,
                             const std::vector<std::int64_t>& rows) {
  static constexpr const char* kNames[5] = {"loss", "hard_ce", "soft_kl", "hidden", "attention"};
  const float terms[5] = {static_cast<float>(local.loss), static_cast<float>(local.hard_ce),
                          static_cast<float>(local.soft_kl), static_cast<float>(local.hidden),
                          static_cast<float>(local.attention)};
  return nonfinite_report(rank, terms, kNames, 5, grad_norm, split, rows);
}

void StepTimer::start() {
  start_ = mark_ = Clock::now();
  laps_ = PhaseTimes{};
}

void StepTimer::lap(double PhaseTimes::*phase) {
  if (!phases_) return;
  synchronize(device_);
  const auto now = Clock::now();
  laps_.*phase = std::chrono::duration<double>(now - mark_).count();
  mark_ = now;
}

void StepTimer::add_to(TrainProfile& p, double input_wait, double comm_wait) const {
  synchronize(device_);
  for (auto phase :
       {&PhaseTimes::input, &PhaseTimes::forward, &PhaseTimes::backward, &PhaseTimes::reduce, &PhaseTimes::optimizer})
    p.phases.*phase += laps_.*phase;
  ++p.steps;
  p.seconds += std::chrono::duration<double>(Clock::now() - start_).count();
  p.input_wait += input_wait;
  p.comm_wait += comm_wait;
}

StepLog::StepLog(int rank, const std::string& out_dir, std::int64_t total, long log_every, std::int64_t global_batch,
                 bool tensorboard)
    : writes_(rank == 0),
      path_(metrics_path(out_dir)),
      total_(total),
      global_batch_(global_batch),
      log_every_(log_every),
      window_start_(std::chrono::steady_clock::now()) {
  if (writes_ && tensorboard) tb_ = rewrite_tensorboard(out_dir);
}

void StepLog::write(const nlohmann::json& line) {
  append_line(path_, line.dump() + "\n");
  if (tb_) tb_->add(line["wall_time"].get<double>(), line["step"].get<std::int64_t>(), tensorboard_scalars(line));
}

void StepLog::after_step(std::int64_t steps, std::int64_t epoch, const StepScalars& s, double lr, double grad_norm,
                         std::int64_t skipped_steps, double input_wait, double comm_wait, const KdOptions* kd) {
  ++window_steps_;
  window_input_wait_ += input_wait;
  window_comm_wait_ += comm_wait;
  if (!writes_ || (steps % log_every_ != 0 && steps != total_)) return;
  auto now = std::chrono::steady_clock::now();
  const double dt = std::chrono::duration<double>(now - window_start_).count();
  const double sps = dt > 0 ? window_steps_ * global_batch_ / dt : 0;
  nlohmann::json line = {{"step", steps},
                         {"epoch", epoch},
                         {"wall_time", unix_seconds()},
                         {"loss", s.loss},
                         {"hard_ce", s.hard_ce},
                         {"lr", lr},
                         {"grad_norm", grad_norm},
                         {"samples_per_s", sps},
                         {"input_wait_share", dt > 0 ? std::min(1.0, window_input_wait_ / dt) : 0.0},
                         {"comm_wait_share", dt > 0 ? std::min(1.0, window_comm_wait_ / dt) : 0.0}};
  if (skipped_steps > 0) line["skipped_steps"] = skipped_steps;
  if (s.has_soft_kl) line["soft_kl"] = s.soft_kl;
  if (s.has_hidden) line["hidden"] = s.hidden;
  if (s.has_attention) line["attention"] = s.attention;
  if (kd) line.update({{"alpha", kd->alpha}, {"beta", kd->beta}, {"temperature", kd->temperature}});
  write(line);
  spdlog::info("step {}/{} loss {:.4f} ce {:.4f}{}{}{}{} lr {:.2e} {:.0f} samples/s", steps, total_, s.loss, s.hard_ce,
               s.has_soft_kl ? fmt::format(" kd {:.4f}", s.soft_kl) : "",
               s.has_hidden ? fmt::format(" hidden {:.4f}", s.hidden) : "",
               s.has_attention ? fmt::format(" attention {:.4f}", s.attention) : "",
               kd ? fmt::format(" (alpha {:.4g} beta {:.4g} T {:.4g})", kd->alpha, kd->beta, kd->temperature) : "", lr,
               sps);
  window_start_ = now;
  window_steps_ = 0;
  window_input_wait_ = window_comm_wait_ = 0;
}

void StepLog::after_eval(std::int64_t steps, const std::string& split, const EvalResult& r) {
  if (!writes_) return;
  nlohmann::json line = {{"step", steps}, {"wall_time", unix_seconds()}, {"eval_split", split}};
  if (r.regression) {
    if (r.labeled > 0)
      line.update({{"dev_mse", r.student_fit.mse},
                   {"dev_pearson", r.student_fit.pearson},
                   {"dev_spearman", r.student_fit.spearman}});
    if (r.has_teacher)
      line.update({{"dev_mse_teacher_student", r.fidelity.mse}, {"dev_pearson_teacher_student", r.fidelity.pearson}});
  } else if (r.labeled > 0) {
    line["dev_accuracy"] = r.accuracy;
    if (r.has_class_metrics) line.update({{"dev_macro_f1", r.macro_f1}, {"dev_mcc", r.mcc}});
  }
  if (r.has_teacher && !r.regression) line.update({{"dev_agreement", r.agreement}, {"dev_kl", r.kl}});
  write(line);
}

}  // namespace distill
