// What the trainer records of each step: its loss terms averaged over the ranks, the metrics
// lines (metrics.jsonl) and log lines rank 0 writes, and the step timings that bench reads.
#pragma once
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/kd/objective.h"
#include "distill/train/eval.h"
#include "distill/train/metrics_log.h"

namespace distill {

// One step's loss terms (metrics.jsonl's keys); absent terms are 0 and not written.
struct StepScalars {
  double loss = 0, hard_ce = 0, soft_kl = 0, hidden = 0, attention = 0;
  bool has_soft_kl = false, has_hidden = false, has_attention = false;  // whether the objective has them
};

// This rank's terms as float32 values, each times `share` (the sampler's loss weight).
StepScalars step_scalars(const ObjectiveTerms& t, double share);

// Collective: `mean` receives `local` averaged over the ranks in float32, like the gradients.
// Returns false on every rank when a term or the gradient norm of any rank, or the mean loss, is
// not finite (Note [non-finite steps]).
bool average_scalars(Communicator& comm, const StepScalars& local, double grad_norm, StepScalars& mean);

// nonfinite_report (train/nonfinite.h) for this rank's terms `local`.
std::string nonfinite_report(int rank, const StepScalars& local, double grad_norm, const DataSplit& split,
                             const std::vector<std::int64_t>& rows);

// Seconds of a step by phase.
struct PhaseTimes {
  double input = 0;      // the loader and the copy to the device
  double forward = 0;    // with the loss
  double backward = 0;   // with the gradient hooks
  double reduce = 0;     // metrics allreduce and waiting for the gradient buckets
  double optimizer = 0;  // clipping and the update
};

// Over the timed steps (those after TrainJob::untimed_steps), measured on rank 0 from the batch to
// the optimizer step (checkpoints and evaluation excluded): their count, seconds, and of those the
// waits; with TrainJob::profile also by phase.
struct TrainProfile {
  std::int64_t steps = 0;
  double seconds = 0, input_wait = 0, comm_wait = 0;
  PhaseTimes phases;
};

// Times one step at a time. With `phases`, each lap synchronizes the device first.
class StepTimer {
 public:
  StepTimer(const c10::Device& device, bool phases) : device_(device), phases_(phases) {}
  void start();  // at the top of a step
  // With phases: the seconds since the previous mark become the step's `phase`.
  void lap(double PhaseTimes::*phase);
  // Synchronizes the device and adds the step to `p`.
  void add_to(TrainProfile& p, double input_wait, double comm_wait) const;

 private:
  using Clock = std::chrono::steady_clock;
  c10::Device device_;
  bool phases_;
  Clock::time_point start_, mark_;
  PhaseTimes laps_;
};

// Rank 0's record of the run: a metrics line and a log line every `log_every` steps and at the
// last of `total`, with the samples per second and the shares of time spent waiting for input and
// for communication since the previous one; a metrics line per evaluation. With `tensorboard`,
// out_dir/tb mirrors metrics.jsonl (rewritten from its kept lines at construction).
class StepLog {
 public:
  StepLog(int rank, const std::string& out_dir, std::int64_t total, long log_every, std::int64_t global_batch,
          bool tensorboard);
  // After the step that made `steps` steps (its cursor now in `epoch`), which waited `input_wait`
  // and `comm_wait` seconds. `kd`: the step's scheduled alpha, beta and T, logged when given.
  void after_step(std::int64_t steps, std::int64_t epoch, const StepScalars& s, double lr, double grad_norm,
                  std::int64_t skipped_steps, double input_wait, double comm_wait, const KdOptions* kd = nullptr);
  // After evaluating split `split` at step `steps`: dev_accuracy, dev_macro_f1 and dev_mcc over its
  // labeled rows (when it has some), dev_agreement and dev_kl (with a teacher).
  void after_eval(std::int64_t steps, const std::string& split, const EvalResult& r);

 private:
  void write(const nlohmann::json& line);

  const bool writes_;
  const std::string path_;
  const std::int64_t total_, global_batch_;
  const long log_every_;
  std::unique_ptr<EventFileWriter> tb_;
  std::chrono::steady_clock::time_point window_start_;
  std::int64_t window_steps_ = 0;
  double window_input_wait_ = 0, window_comm_wait_ = 0;
};

}  // namespace distill
