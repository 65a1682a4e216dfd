// `train` and `run`: the student side (offline store, online teacher or streaming) and the split
// of one job into teacher and student groups.
#include "distill/app/commands.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <chrono>
#include <cmath>
#include <thread>

#include "distill/app/faults.h"
#include "distill/data/sampler.h"
#include "distill/kd/loss.h"
#include "distill/model/hf.h"
#include "distill/data/batch.h"
#include "distill/model/load.h"
#include "distill/model/weights.h"
#include "distill/store/reader.h"
#include "distill/train/eval.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"
#include "distill/util/text.h"

namespace distill {

namespace fs = std::filesystem;

namespace {
ModelConfig student_config(const RunConfig& c, const Dataset& data) {
  ModelConfig s = c.student;
  if (s.num_labels == 0) s.num_labels = data.num_labels();
  if (data.task == "features") {
    DISTILL_CHECK(s.is_vector(), ConfigError, "data set ", data.path, " holds feature vectors; student.kind = '",
                  s.kind, "' needs token ids (use mlp or deep_linear)");
    const auto dim = data.splits.begin()->second.dim;
    if (s.input_dim == 0) s.input_dim = dim;
    DISTILL_CHECK(s.input_dim == dim, ConfigError, "student.input_dim = ", s.input_dim, " but data set ", data.path,
                  " has ", dim, " features");
    return s;
  }
  DISTILL_CHECK(s.is_bert(), ConfigError, "student.kind = '", s.kind, "' takes feature vectors; data set ", data.path,
                " holds token ids (a ", data.task, " task)");
  DISTILL_CHECK((data.task == "mlm") == (s.kind == "bert_mlm"), ConfigError, "data set ", data.path, " is a ",
                data.task, " task; student.kind = '", s.kind, "' needs ",
                s.kind == "bert_mlm" ? "a masked-LM data set (prepare --mlm)" : "a classification data set");
  DISTILL_CHECK(s.vocab_size >= data.vocab_size, ConfigError, "student.vocab_size = ", s.vocab_size,
                " is smaller than the vocabulary of ", data.path, " (", data.vocab_size, ")");
  DISTILL_CHECK(s.max_positions >= data.max_length, ConfigError, "student.max_positions = ", s.max_positions,
                " is shorter than the sequences of ", data.path, " (", data.max_length, ")");
  return s;
}
}  // namespace

namespace {

// The student side of `train` and `run`. With `teachers` > 0 the store is being written by that
// many teacher ranks (streaming): shards are loaded as they are committed.
void train_students(Communicator& comm, const RunConfig& c, bool resume, int teachers, const std::string& job_name) {
  auto lock = lock_job_dir(comm, c.train.out_dir, job_name);
  auto data = read_dataset(c.data.path);
  comm.check_same(data.content_hash, "dataset hash");
  TrainJob job;
  job.data = &data;
  job.train_split = c.data.train_split;
  job.eval_split = c.data.eval_split;
  job.model = student_config(c, data);
  if (!c.student_init_layers.empty()) {
    DISTILL_CHECK(!c.student_init.empty(), ConfigError, "student.init_layers needs student.init (the teacher to copy)");
    auto src = std::make_shared<LoadedModel>(load_model(c.student_init, false, data.num_labels(), c.student.kind));
    const auto& t = src->model->config();
    const auto& s = job.model;
    std::vector<long> layers;
    for (const auto& item : split(c.student_init_layers, ',')) {
      char* end = nullptr;
      const long l = std::strtol(item.c_str(), &end, 10);
      DISTILL_CHECK(!item.empty() && *end == '\0' && l >= 1 && l <= t.layers, ConfigError, "student.init_layers: '",
                    item, "' is not a layer of ", c.student_init, " (1..", t.layers, ")");
      layers.push_back(l);
    }
    DISTILL_CHECK(static_cast<long>(layers.size()) == s.layers, ConfigError, "student.init_layers lists ",
                  layers.size(), " layers for a student of ", s.layers);
    DISTILL_CHECK(s.hidden == t.hidden && s.intermediate == t.intermediate && s.heads == t.heads, ConfigError,
                  "student.init_layers copies layers of ", c.student_init, " (hidden ", t.hidden, ", intermediate ",
                  t.intermediate, ", heads ", t.heads, ") into a student with hidden ", s.hidden, ", intermediate ",
                  s.intermediate, ", heads ", s.heads, ": the widths must match");
    DISTILL_CHECK(s.vocab_size == t.vocab_size && s.max_positions == t.max_positions && s.type_vocab == t.type_vocab,
                  ConfigError, "student.init_layers: the embeddings of ", c.student_init, " (", t.vocab_size, " x ",
                  t.max_positions, " x ", t.type_vocab, ") do not fit the student's (", s.vocab_size, " x ",
                  s.max_positions, " x ", s.type_vocab, ")");
    if (comm.rank() == 0)
      spdlog::info("student starts from {}: embeddings and layers {}", c.student_init, c.student_init_layers);
    job.init = [src, layers](NetworkImpl& m) {
      torch::NoGradGuard g;
      auto from = src->model->named_parameters();
      for (auto& p : m.named_parameters()) {
        std::string name = p.key();
        const std::string prefix = "bert.encoder.layer.";
        if (name.rfind(prefix, 0) == 0) {
          const auto dot = name.find('.', prefix.size());
          const long j = std::stol(name.substr(prefix.size(), dot - prefix.size()));
          name = prefix + std::to_string(layers[j] - 1) + name.substr(dot);
        } else if (name.rfind("bert.embeddings.", 0) != 0) {
          continue;  // pooler and classifier keep their initialisation
        }
        p.value().copy_(from[name]);
      }
    };
  } else if (!c.student_init.empty()) {
    auto init = std::make_shared<LoadedModel>(load_model(c.student_init, false, data.num_labels(), c.student.kind));
    ModelConfig s = init->model->config();
    s.dropout = c.student.dropout;
    s.attention_dropout = c.student.attention_dropout;
    DISTILL_CHECK(s.vocab_size >= data.vocab_size && s.max_positions >= data.max_length, ConfigError,
                  "student.init ", c.student_init, " covers ", s.vocab_size, " tokens and ", s.max_positions,
                  " positions; data set ", data.path, " needs ", data.vocab_size, " and ", data.max_length);
    if (comm.rank() == 0)
      spdlog::info("student starts from {}: {} layers, hidden {}, {} heads (architecture taken from there)",
                   c.student_init, s.layers, s.hidden, s.heads);
    job.model = s;
    job.init = [init](NetworkImpl& m) {
      torch::NoGradGuard g;
      auto src = init->model->named_parameters();
      for (auto& p : m.named_parameters()) p.value().copy_(src[p.key()]);
    };
  }
  if (job.model.is_bert())
    for (const auto& name : {c.data.train_split, c.data.eval_split})
      if (data.splits.count(name))
        check_fits_model(data, name, job.model.vocab_size, job.model.type_vocab, job.model.max_positions, "the student");
  job.kd = c.distill;
  job.opt = c.train;
  job.resume = resume;
  job.config_yaml = dump_config(c);
  job.config_hash = config_hash(c);
  job.layers = c.layers;
  std::unique_ptr<LoadedTeacher> online;
  if (c.teacher.online) {
    DISTILL_CHECK(c.store.path.empty(), ConfigError, "teacher.online and store.path are both set: the online "
                  "teacher replaces the store; clear one of them");
    online = std::make_unique<LoadedTeacher>(load_teacher(c.teacher, comm));
    comm.check_same(online->fingerprint, "teacher fingerprint");
    const long tl = online->model->num_labels();
    DISTILL_CHECK(data.task == "mlm" || tl == 0 || tl == data.num_labels(), DataError, "teacher ", online->file, " has ", tl,
                  " labels, data set ", data.path, " has ", data.num_labels());
    if (const auto* tc = online->model->config(); tc && tc->is_bert())
      check_fits_model(data, c.data.train_split, tc->vocab_size, tc->type_vocab, tc->max_positions,
                       "teacher " + online->file);
    job.online_teacher = online->model.get();
    job.teacher_fingerprint = online->fingerprint;
  }
  std::unique_ptr<StoreReader> store;
  if (!c.store.path.empty()) {
    StoreMeta expect;
    if (!c.teacher.path.empty()) expect.teacher_fingerprint = teacher_fingerprint(c.teacher.path);
    expect.dataset_hash = data.content_hash;
    expect.split = c.data.train_split;
    expect.num_labels = data.task == "mlm" ? 0 : c.student.num_labels;
    expect.num_examples = data.split(c.data.train_split).n;
    expect.targets = data.task == "mlm" ? "mlm_topk" : "logits";
    if (teachers > 0) {
      DISTILL_CHECK(data.task != "mlm" && c.layers.hidden_map.empty() && c.layers.attention_map.empty(), ConfigError,
                    "distill run streams logits stores; masked-LM and layer-map stores need an offline precompute");
      DISTILL_CHECK(!c.teacher.path.empty(), ConfigError, "distill run needs teacher.path");
      expect.dtype = c.store.dtype;
      expect.shard_size = c.store.shard_size;
      expect.num_labels = data.num_labels();
      store = std::make_unique<StoreReader>(c.store.path, expect, StoreReader::Streaming{});
      // First epoch: shards in global order, shuffled within windows of store.window shards.
      const auto ranges = shard_ranges(expect.num_examples, expect.shard_size);
      const std::int64_t window = c.store.window, count = static_cast<std::int64_t>(ranges.size());
      std::vector<std::int64_t> ends;
      for (std::int64_t w = window; w < count + window; w += window) ends.push_back(ranges[std::min(w, count) - 1].end);
      job.first_epoch_order = grouped_order(ends, static_cast<std::uint64_t>(c.train.seed), 0);
      auto* reader = store.get();
      const double timeout = c.teacher.stream_timeout;
      const std::int64_t shard_size = expect.shard_size;
      const int rank = comm.rank();
      job.wait_for_rows = [reader, window, count, timeout, shard_size, rank](std::int64_t epoch,
                                                                              const std::vector<std::int64_t>& rows) {
        std::int64_t need = count;
        if (epoch == 0) {
          std::int64_t last = 0;
          for (auto r : rows) last = std::max(last, r / shard_size);
          need = std::min(count, (last / window + 1) * window);
        }
        if (reader->shards_loaded() >= need) return 0.0;
        const auto before = reader->shards_loaded();
        const double waited = reader->wait_for_shards(need, timeout);
        if (rank == 0 && before == 0)
          spdlog::info("streaming: first batch ready after {:.2f}s with {} of {} shards committed", waited,
                       reader->shards_loaded(), count);
        return waited;
      };
    } else {
      store = std::make_unique<StoreReader>(c.store.path, expect, c.store.verify);
    }
    job.teacher_fingerprint = store->manifest().meta.teacher_fingerprint;
    comm.check_same(job.teacher_fingerprint + "/" + std::to_string(store->manifest().meta.schema_version),
                    "store teacher fingerprint and schema");
    const auto& sm = store->manifest().meta;
    if (data.task == "mlm") {
      DISTILL_CHECK(sm.num_labels == job.model.vocab_size, StoreError, "store ", c.store.path, " holds logits over ",
                    sm.num_labels, " tokens, the student's vocabulary has ", job.model.vocab_size);
      DISTILL_CHECK(std::abs(sm.temperature - c.distill.temperature) < 1e-12, ConfigError, "store ", c.store.path,
                    " was precomputed at temperature ", sm.temperature, " (its lse is logsumexp(z / T)); this run's "
                    "distill.temperature is ", c.distill.temperature, ": use the same or precompute again");
    } else {
      DISTILL_CHECK(store->num_labels() == job.model.num_labels, StoreError, "store ", c.store.path, " holds ",
                    store->num_labels(), " labels, the student expects ", job.model.num_labels);
    }
    job.store = store.get();
  }
  DISTILL_CHECK(data.task == "mlm" || job.model.num_labels == data.num_labels(), DataError, "student.num_labels = ", job.model.num_labels,
                " but data set ", data.path, " has ", data.num_labels(), " labels");
  auto r = train(comm, job);
  double wait = r.wait_seconds, secs = r.seconds;
  comm.allreduce(&wait, 1, DType::kFloat64, ReduceOp::kAverage);
  comm.allreduce(&secs, 1, DType::kFloat64, ReduceOp::kAverage);
  if (comm.rank() != 0) return;
  nlohmann::json j = {{"steps", r.steps}, {"final_loss", r.final_loss}, {"samples_per_s", r.samples_per_s},
                      {"parameters", r.parameters}, {"checkpoint", r.checkpoint}, {"ranks", comm.size()}};
  if (r.dev_accuracy >= 0) j["dev_accuracy"] = r.dev_accuracy;
  if (teachers > 0) {
    j["wait_share"] = secs > 0 ? wait / secs : 0.0;
    // Balance: the teachers' rate (teachers.json, written when they finish) against consumption.
    const auto stats = (fs::path(c.store.path) / "teachers.json").string();
    for (int i = 0; i < 600 && !path_exists(stats); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double busy = secs - wait;
    const double consumption = busy > 0 ? r.samples_per_s * secs / busy : 0.0;  // examples/s when not waiting
    j["student_examples_per_s_busy"] = consumption;
    if (path_exists(stats)) {
      auto t = nlohmann::json::parse(read_file(stats));
      const double per_rank = t.at("examples_per_s_per_rank").get<double>();
      j["teacher_examples_per_s_per_rank"] = per_rank;
      j["teacher_ranks"] = teachers;
      j["teacher_ranks_to_keep_students_busy"] = per_rank > 0 ? static_cast<long>(std::ceil(consumption / per_rank)) : 0;
      spdlog::info("balance: students waited {:.1f}% of {:.1f}s; teachers computed {:.0f} examples/s per rank on {} "
                   "ranks, students consume {:.0f} examples/s when not waiting: {} teacher ranks would keep them busy",
                   100.0 * j["wait_share"].get<double>(), secs, per_rank, teachers, consumption,
                   j["teacher_ranks_to_keep_students_busy"].get<long>());
    } else {
      spdlog::warn("balance: {} not written by the teachers within 60 s", stats);
    }
  }
  write_file_atomic((fs::path(c.train.out_dir) / "train_summary.json").string(), j.dump(2) + "\n");
  spdlog::info("training done: {}", j.dump());
}

}  // namespace

void cmd_train(Communicator& comm, const RunArgs& a, bool resume) {
  auto c = resolve_config(comm, a);
  train_students(comm, c, resume, 0, "distill train -c " + a.config_path);
}

void cmd_run(Communicator& comm, const RunArgs& a, long teacher_ranks) {
  auto c = resolve_config(comm, a);
  const long n = teacher_ranks > 0 ? teacher_ranks : c.teacher.ranks;
  DISTILL_CHECK(n > 0 && n < comm.size(), ConfigError, "distill run needs 1..", comm.size() - 1,
                " teacher ranks (--teacher-ranks or teacher.ranks) out of ", comm.size(), " ranks, got ", n);
  DISTILL_CHECK(!c.store.path.empty(), ConfigError, "distill run streams through the store: set store.path");
  const bool teacher = comm.rank() < n;
  // Note [groups]: from here on each group only talks among itself; the store is the channel.
  auto group = comm.split(teacher ? 0 : 1, comm.rank());
  set_log_rank(comm.rank(), comm.size(), host_name() + (teacher ? " teacher " : " student ") +
                                             std::to_string(group->rank()) + "/" + std::to_string(group->size()));
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
  nlohmann::json t = {{"ranks", group->size()}, {"examples_computed", r.examples_computed}, {"seconds", r.seconds},
                      {"shards_written", r.shards_written}, {"shards_skipped", r.shards_skipped},
                      {"examples_per_s_per_rank", per_rank}};
  write_file_atomic((fs::path(c.store.path) / "teachers.json").string(), t.dump(2) + "\n");
  spdlog::info("teachers done: {} shards written, {} already committed, {:.0f} examples/s per teacher rank; leaving",
               r.shards_written, r.shards_skipped, per_rank);
}

}  // namespace distill
