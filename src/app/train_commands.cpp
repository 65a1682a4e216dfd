// `train` and `run`: the student side (offline store, online teacher or streaming; built in
// app/student_run) with its summary, and the split of one job into teacher and student groups.
#include "distill/app/commands.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "distill/app/faults.h"
#include "distill/app/student_run.h"
#include "distill/train/checkpoint.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

// Balance of a streamed run: the teachers' rate (teachers.json, written when they finish) against
// the students' consumption. `secs` and `wait` are the ranks' averages.
void add_stream_balance(nlohmann::json& j, const RunConfig& c, const TrainResult& r, double secs, double wait,
                        int teachers) {
  j["wait_share"] = secs > 0 ? wait / secs : 0.0;
  const auto stats = (fs::path(c.store.path) / "teachers.json").string();
  for (int i = 0; i < 600 && !path_exists(stats); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double busy = secs - wait;
  const double consumption = busy > 0 ? r.samples_per_s * secs / busy : 0.0;  // examples/s when not waiting
  j["student_examples_per_s_busy"] = consumption;
  if (!path_exists(stats)) {
    spdlog::warn("balance: {} not written by the teachers within 60 s", stats);
    return;
  }
  auto t = nlohmann::json::parse(read_file(stats));
  const double per_rank = t.at("examples_per_s_per_rank").get<double>();
  j["teacher_examples_per_s_per_rank"] = per_rank;
  j["teacher_ranks"] = teachers;
  j["teacher_ranks_to_keep_students_busy"] = per_rank > 0 ? static_cast<long>(std::ceil(consumption / per_rank)) : 0;
  spdlog::info(
      "balance: students waited {:.1f}% of {:.1f}s; teachers computed {:.0f} examples/s per rank on {} "
      "ranks, students consume {:.0f} examples/s when not waiting: {} teacher ranks would keep them busy",
      100.0 * j["wait_share"].get<double>(), secs, per_rank, teachers, consumption,
      j["teacher_ranks_to_keep_students_busy"].get<long>());
}

// Rank 0 writes train.out_dir/train_summary.json and logs it. Collective over `comm` (the waits
// and step times are averaged over the ranks).
void report_training(Communicator& comm, const RunConfig& c, const TrainResult& r, int teachers) {
  double wait = r.wait_seconds, secs = r.seconds;
  comm.allreduce(&wait, 1, DType::kFloat64, ReduceOp::kAverage);
  comm.allreduce(&secs, 1, DType::kFloat64, ReduceOp::kAverage);
  if (comm.rank() != 0) return;
  nlohmann::json j = {{"steps", r.steps},           {"final_loss", r.final_loss}, {"samples_per_s", r.samples_per_s},
                      {"parameters", r.parameters}, {"checkpoint", r.checkpoint}, {"ranks", comm.size()}};
  if (r.dev_accuracy >= 0) j["dev_accuracy"] = r.dev_accuracy;
  if (r.dev_macro_f1 >= 0) j.update({{"dev_macro_f1", r.dev_macro_f1}, {"dev_mcc", r.dev_mcc}});
  if (r.dev_regression)
    j.update({{"dev_mse", r.dev_regression->mse},
              {"dev_pearson", r.dev_regression->pearson},
              {"dev_spearman", r.dev_regression->spearman}});
  if (c.train.select != Select::kNone)
    j.update({{"select", name(c.train.select)},
              {"best_step", r.best_step},
              {"best_metric", r.best_metric},
              {"best_checkpoint", checkpoints_dir(c.train.out_dir) + "/best"},
              {"stopped_early", r.stopped_early}});
  if (teachers > 0) add_stream_balance(j, c, r, secs, wait, teachers);
  write_file_atomic((fs::path(c.train.out_dir) / "train_summary.json").string(), j.dump(2) + "\n");
  spdlog::info("training done: {}", j.dump());
}

// The student side of `train` and `run`, in `job_name`'s lock of train.out_dir. With `teachers` > 0
// the store is being written by that many teacher ranks (streaming).
void train_students(Communicator& comm, const RunConfig& c, bool resume, int teachers, const std::string& job_name) {
  auto lock = lock_job_dir(comm, c.train.out_dir, job_name);
  auto run = open_student_run(comm, c, resume, teachers);
  const auto r = train(comm, run->job);
  report_training(comm, c, r, teachers);
}

}  // namespace

void cmd_train(Communicator& comm, const RunArgs& a, bool resume) {
  auto c = resolve_config(comm, a);
  train_students(comm, c, resume, 0, "distill train -c " + a.config_path);
}

void cmd_run(Communicator& comm, const RunArgs& a, long teacher_ranks) {
  auto c = resolve_config(comm, a);
  const long n = teacher_ranks > 0 ? teacher_ranks : c.stream.ranks;
  DISTILL_CHECK(n > 0 && n < comm.size(), ConfigError, "distill run needs 1..", comm.size() - 1,
                " teacher ranks (--teacher-ranks or teacher.ranks) out of ", comm.size(), " ranks, got ", n);
  DISTILL_CHECK(!c.store.path.empty(), ConfigError, "distill run streams through the store: set store.path");
  // Refused on every rank before the teacher ranks start writing (open_streaming_store says why).
  DISTILL_CHECK(c.teacher.extra_paths.empty() && c.store.extra_paths.empty(), ConfigError,
                "distill run streams one teacher's store; with teacher.extra_paths run distill precompute, then "
                "distill train");
  DISTILL_CHECK(c.layers.hidden_map.empty() && c.layers.attention_map.empty(), ConfigError,
                "distill run streams logits stores; layer maps need an offline distill precompute or teacher.online");
  const bool teacher = comm.rank() < n;
  // Note [groups]: from here on each group only talks among itself; the store is the channel.
  auto group = comm.split(teacher ? 0 : 1, comm.rank());
  set_log_rank(comm.rank(), comm.size(),
               host_name() + (teacher ? " teacher " : " student ") + std::to_string(group->rank()) + "/" +
                   std::to_string(group->size()));
  if (!teacher) {
    if (group->rank() == 0)
      spdlog::info("streaming: {} student ranks train while {} teacher ranks write {}", group->size(), n, c.store.path);
    train_students(*group, c, /*resume=*/true, static_cast<int>(n), "distill run (students) -c " + a.config_path);
    return;
  }
  auto lock = lock_job_dir(*group, c.store.path, "distill run (teachers) -c " + a.config_path);
  auto data = read_dataset(c.data.path);
  if (group->rank() == 0 && path_exists((fs::path(c.store.path) / "teachers.json").string()))
    fs::remove(fs::path(c.store.path) / "teachers.json");
  const auto loaded = load_teacher(c.teacher, *group);
  TargetSpec spec;
  spec.temperature = c.distill.temperature;
  auto r = precompute(*group, data, c.data.train_split, loaded, c.teacher, c.store, spec, fault_precompute_hooks());
  if (group->rank() != 0) return;
  const double per_rank = r.seconds > 0 ? r.examples_computed / r.seconds / group->size() : 0.0;
  nlohmann::json t = {{"ranks", group->size()},
                      {"examples_computed", r.examples_computed},
                      {"seconds", r.seconds},
                      {"shards_written", r.shards_written},
                      {"shards_skipped", r.shards_skipped},
                      {"examples_per_s_per_rank", per_rank}};
  write_file_atomic((fs::path(c.store.path) / "teachers.json").string(), t.dump(2) + "\n");
  spdlog::info("teachers done: {} shards written, {} already committed, {:.0f} examples/s per teacher rank; leaving",
               r.shards_written, r.shards_skipped, per_rank);
}

}  // namespace distill
