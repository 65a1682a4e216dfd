// The trainer's side of checkpoints (train/checkpoint.h): where a run starts (--resume, with the
// checks that the checkpoint belongs to this run) and the checkpoints it writes (finite weights
// only, every rank's generator state, rotation).
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

#include "distill/comm/communicator.h"
#include "distill/data/sampler.h"
#include "distill/train/student.h"
#include "distill/train/trainer.h"

namespace distill {

// The resume check of precisions: throws ConfigError when the checkpoint in `dir` was trained in
// `recorded` (empty: not recorded, accepted) and this run resolves train.precision `requested` to
// `resolved`, explaining why and what to do.
void check_resume_precision(const std::string& dir, const std::string& recorded, const std::string& requested,
                            const std::string& resolved);

// Where a run stands: what a checkpoint keeps besides the weights.
struct Progress {
  std::int64_t step = 0;        // steps done
  Cursor cursor;                // the sampler's next step
  double best_metric = -1;      // best dev metric so far (train.select, else dev accuracy; -1 = none)
  std::int64_t best_step = -1;  // its step (train.select)
  std::int64_t evals_since_best = 0;
  std::int64_t skipped_steps = 0;  // non-finite updates skipped (Note [non-finite steps])
};

class Checkpointer {
 public:
  // `comm`, `job` and `student` must outlive the checkpointer; `precision` is train.precision as
  // resolved for this run (recorded, and checked on resume).
  Checkpointer(Communicator& comm, const TrainJob& job, Student& student, const c10::Device& device,
               std::string precision);
  // Where the run starts. With job.resume: the latest checkpoint under train.out_dir (its weights,
  // projections, optimizer state and this rank's generator states loaded into the student), after
  // checking it was written by as many ranks, with the same config, in the same resolved precision
  // and on the same data (else ConfigError / DataError); step 0 when there is none. Then rank 0 makes train.out_dir and
  // keeps only the lines of metrics.jsonl up to that step (a resumed run rewrites what follows).
  Progress start();
  // Collective: writes the checkpoint of `p` (rank 0 writes, keeping train.keep_checkpoints) with
  // best metric max(p.best_metric, dev_accuracy). Throws DataError on every rank, writing nothing,
  // when a weight is not finite on any rank (Note [non-finite steps]).
  void save(const Progress& p, double dev_accuracy);
  // The directory of the checkpoint of step `step`.
  std::string dir(std::int64_t step) const;

 private:
  void resume(Progress& p);
  Communicator& comm_;
  const TrainJob& job_;
  Student& student_;
  c10::Device device_;
  std::string precision_;
  std::string root_;
};

}  // namespace distill
