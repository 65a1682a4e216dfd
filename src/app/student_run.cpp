#include "distill/app/student_run.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "distill/app/faults.h"
#include "distill/data/streaming.h"
#include "distill/model/init.h"
#include "distill/model/load.h"
#include "distill/util/error.h"
#include "distill/util/log.h"
#include "distill/util/text.h"

namespace distill {

namespace {

// student.*, completed from the data set (label count, input width) and checked against it.
ModelConfig student_config(const RunConfig& c, const Dataset& data) {
  ModelConfig s = c.student;
  if (s.num_labels == 0) s.num_labels = data.num_labels();
  if (data.task == "features") {
    DISTILL_CHECK(s.is_vector(), ConfigError, "data set ", data.path, " holds feature vectors; student.kind = '",
                  name(s.kind), "' needs token ids (use mlp or deep_linear)");
    const auto dim = data.splits.begin()->second.dim;
    if (s.input_dim == 0) s.input_dim = dim;
    DISTILL_CHECK(s.input_dim == dim, ConfigError, "student.input_dim = ", s.input_dim, " but data set ", data.path,
                  " has ", dim, " features");
    return s;
  }
  DISTILL_CHECK(s.is_bert(), ConfigError, "student.kind = '", name(s.kind), "' takes feature vectors; data set ",
                data.path, " holds token ids (a ", data.task, " task)");
  DISTILL_CHECK((data.task == "mlm") == (s.kind == ModelKind::kBertMlm), ConfigError, "data set ", data.path, " is a ",
                data.task, " task; student.kind = '", name(s.kind), "' needs ",
                s.kind == ModelKind::kBertMlm ? "a masked-LM data set (prepare --mlm)" : "a classification data set");
  DISTILL_CHECK(s.vocab_size >= data.vocab_size, ConfigError, "student.vocab_size = ", s.vocab_size,
                " is smaller than the vocabulary of ", data.path, " (", data.vocab_size, ")");
  DISTILL_CHECK(s.max_positions >= data.max_length, ConfigError, "student.max_positions = ", s.max_positions,
                " is shorter than the sequences of ", data.path, " (", data.max_length, ")");
  return s;
}

// student.init_layers ("2,4,6"): one 1-based layer of student.init (`t`) per layer of the student `s`.
std::vector<long> parse_init_layers(const RunConfig& c, const ModelConfig& t, const ModelConfig& s) {
  std::vector<long> layers;
  for (const auto& item : split(c.student_init_layers, ',')) {
    char* end = nullptr;
    const long l = std::strtol(item.c_str(), &end, 10);
    DISTILL_CHECK(!item.empty() && *end == '\0' && l >= 1 && l <= t.layers, ConfigError, "student.init_layers: '", item,
                  "' is not a layer of ", c.student_init, " (1..", t.layers, ")");
    layers.push_back(l);
  }
  DISTILL_CHECK(static_cast<long>(layers.size()) == s.layers, ConfigError, "student.init_layers lists ", layers.size(),
                " layers for a student of ", s.layers);
  return layers;
}

// Layers of student.init (`t`) fit the student `s`: the same widths and embedding shapes.
void check_init_layers_fit(const RunConfig& c, const ModelConfig& t, const ModelConfig& s) {
  DISTILL_CHECK(s.hidden == t.hidden && s.intermediate == t.intermediate && s.heads == t.heads, ConfigError,
                "student.init_layers copies layers of ", c.student_init, " (hidden ", t.hidden, ", intermediate ",
                t.intermediate, ", heads ", t.heads, ") into a student with hidden ", s.hidden, ", intermediate ",
                s.intermediate, ", heads ", s.heads, ": the widths must match");
  DISTILL_CHECK(s.vocab_size == t.vocab_size && s.max_positions == t.max_positions && s.type_vocab == t.type_vocab,
                ConfigError, "student.init_layers: the embeddings of ", c.student_init, " (", t.vocab_size, " x ",
                t.max_positions, " x ", t.type_vocab, ") do not fit the student's (", s.vocab_size, " x ",
                s.max_positions, " x ", s.type_vocab, ")");
}

// student.init with student.init_layers: the student keeps the architecture of `job.model` and
// starts from the embeddings and the listed layers of student.init.
void init_from_layers(Communicator& comm, const RunConfig& c, const Dataset& data, TrainJob& job) {
  DISTILL_CHECK(!c.student_init.empty(), ConfigError, "student.init_layers needs student.init (the teacher to copy)");
  auto src = std::make_shared<LoadedModel>(load_model(c.student_init, false, data.num_labels(), c.student.kind));
  const auto& t = src->model->config();
  auto layers = parse_init_layers(c, t, job.model);
  check_init_layers_fit(c, t, job.model);
  if (comm.rank() == 0)
    spdlog::info("student starts from {}: embeddings and layers {}", c.student_init, c.student_init_layers);
  job.init = [src, layers](NetworkImpl& m) { copy_embeddings_and_layers(*src->model, m, layers); };
}

// student.init alone: the architecture and weights of student.init, the dropout of student.*.
void init_from_model(Communicator& comm, const RunConfig& c, const Dataset& data, TrainJob& job) {
  auto init = std::make_shared<LoadedModel>(load_model(c.student_init, false, data.num_labels(), c.student.kind));
  ModelConfig s = init->model->config();
  s.dropout = c.student.dropout;
  s.attention_dropout = c.student.attention_dropout;
  DISTILL_CHECK(s.vocab_size >= data.vocab_size && s.max_positions >= data.max_length, ConfigError, "student.init ",
                c.student_init, " covers ", s.vocab_size, " tokens and ", s.max_positions, " positions; data set ",
                data.path, " needs ", data.vocab_size, " and ", data.max_length);
  if (comm.rank() == 0)
    spdlog::info("student starts from {}: {} layers, hidden {}, {} heads (architecture taken from there)",
                 c.student_init, s.layers, s.hidden, s.heads);
  job.model = s;
  job.init = [init](NetworkImpl& m) { copy_parameters(*init->model, m); };
}

// The student's architecture and first weights (job.model, job.init), checked against the data set.
void set_student(Communicator& comm, const RunConfig& c, const Dataset& data, TrainJob& job) {
  job.model = student_config(c, data);
  if (!c.student_init_layers.empty())
    init_from_layers(comm, c, data, job);
  else if (!c.student_init.empty())
    init_from_model(comm, c, data, job);
  if (job.model.is_bert())
    for (const auto& name : {c.data.train_split, c.data.eval_split})
      if (data.splits.count(name))
        check_fits_model(data, name, job.model.vocab_size, job.model.type_vocab, job.model.max_positions,
                         "the student");
}

// teacher.online: the teacher runs in every rank instead of a store; the same on every rank.
std::unique_ptr<LoadedTeacher> open_online_teacher(Communicator& comm, const RunConfig& c, const Dataset& data) {
  DISTILL_CHECK(c.store.path.empty(), ConfigError,
                "teacher.online and store.path are both set: the online "
                "teacher replaces the store; clear one of them");
  auto online = std::make_unique<LoadedTeacher>(load_teacher(c.teacher, comm));
  comm.check_same(online->fingerprint, "teacher fingerprint");
  const long tl = online->model->num_labels();
  DISTILL_CHECK(data.task == "mlm" || tl == 0 || tl == data.num_labels(), DataError, "teacher ", online->file, " has ",
                tl, " labels, data set ", data.path, " has ", data.num_labels());
  if (const auto* tc = online->model->config(); tc && tc->is_bert())
    check_fits_model(data, c.data.train_split, tc->vocab_size, tc->type_vocab, tc->max_positions,
                     "teacher " + online->file);
  return online;
}

// What the store must hold for this run (the reader checks its manifest against it).
StoreMeta expected_store(const RunConfig& c, const Dataset& data) {
  StoreMeta expect;
  if (!c.teacher.path.empty()) expect.teacher_fingerprint = teacher_fingerprint(c.teacher.path);
  expect.dataset_hash = data.content_hash;
  expect.split = c.data.train_split;
  expect.num_labels = data.task == "mlm" ? 0 : c.student.num_labels;
  expect.num_examples = data.split(c.data.train_split).n;
  expect.targets = data.task == "mlm" ? "mlm_topk" : "logits";
  return expect;
}

// distill run: the store is being written by the teacher ranks. Sets the first epoch's order and
// the hook that waits for a batch's shards.
std::unique_ptr<StoreReader> open_streaming_store(Communicator& comm, const RunConfig& c, const Dataset& data,
                                                  StoreMeta expect, TrainJob& job) {
  DISTILL_CHECK(data.task != "mlm" && c.layers.hidden_map.empty() && c.layers.attention_map.empty(), ConfigError,
                "distill run streams logits stores; masked-LM and layer-map stores need an offline precompute");
  DISTILL_CHECK(!c.teacher.path.empty(), ConfigError, "distill run needs teacher.path");
  expect.dtype = name(c.store.dtype);
  expect.shard_size = c.store.shard_size;
  expect.num_labels = data.num_labels();
  auto store = std::make_unique<StoreReader>(c.store.path, expect, StoreReader::Streaming{});
  const ShardWindows windows{expect.num_examples, expect.shard_size, c.store.window};
  job.first_epoch_order = streaming_first_epoch_order(windows, static_cast<std::uint64_t>(c.train.seed));
  job.wait_for_rows = wait_for_committed_rows(*store, windows, c.stream.stream_timeout, comm.rank() == 0);
  return store;
}

// The store's targets fit the student: its vocabulary and temperature (masked LM) or its labels.
void check_store_fits(const StoreReader& store, const RunConfig& c, const Dataset& data, const ModelConfig& student) {
  const auto& sm = store.manifest().meta;
  if (data.task == "mlm") {
    DISTILL_CHECK(!c.distill.temperature_scheduled(), ConfigError, "distill.temperature_schedule: store ", c.store.path,
                  " holds top-k targets normalised at T = ", sm.temperature,
                  " (its lse); T cannot change over the steps with it (use a dense store or teacher.online)");
    DISTILL_CHECK(sm.num_labels == student.vocab_size, StoreError, "store ", c.store.path, " holds logits over ",
                  sm.num_labels, " tokens, the student's vocabulary has ", student.vocab_size);
    DISTILL_CHECK(std::abs(sm.temperature - c.distill.temperature) < 1e-12, ConfigError, "store ", c.store.path,
                  " was precomputed at temperature ", sm.temperature,
                  " (its lse is logsumexp(z / T)); this run's "
                  "distill.temperature is ",
                  c.distill.temperature, ": use the same or precompute again");
  } else {
    DISTILL_CHECK(store.num_labels() == student.num_labels, StoreError, "store ", c.store.path, " holds ",
                  store.num_labels(), " labels, the student expects ", student.num_labels);
  }
}

// store.path: the soft targets, the same teacher and schema on every rank (job.store,
// job.teacher_fingerprint).
std::unique_ptr<StoreReader> open_store(Communicator& comm, const RunConfig& c, const Dataset& data, int teachers,
                                        TrainJob& job) {
  auto expect = expected_store(c, data);
  auto store = teachers > 0 ? open_streaming_store(comm, c, data, expect, job)
                            : std::make_unique<StoreReader>(c.store.path, expect, c.store.verify);
  job.teacher_fingerprint = store->manifest().meta.teacher_fingerprint;
  comm.check_same(job.teacher_fingerprint + "/" + std::to_string(store->manifest().meta.schema_version),
                  "store teacher fingerprint and schema");
  check_store_fits(*store, c, data, job.model);
  job.store = store.get();
  return store;
}


// The stores of teacher.extra_paths (store.extra_paths, one per teacher), each checked against its
// teacher, the data set and the student like store.path.
void open_more_stores(Communicator& comm, const RunConfig& c, const Dataset& data,
                      const std::vector<std::string>& teachers, StudentRun& run) {
  const auto stores = split_list(c.store.extra_paths);
  DISTILL_CHECK(!c.store.path.empty(), ConfigError,
                "teacher.extra_paths: the student learns from every teacher's soft targets: set store.path and "
                "store.extra_paths (distill precompute writes them), or teacher.online: true");
  // validate_config saw as many stores as teachers once store.path is set.
  for (std::size_t i = 0; i < stores.size(); ++i) {
    RunConfig ci = c;
    ci.teacher.path = teachers[i];
    ci.store.path = stores[i];
    auto store = std::make_unique<StoreReader>(stores[i], expected_store(ci, data), c.store.verify);
    const auto& fp = store->manifest().meta.teacher_fingerprint;
    comm.check_same(fp + "/" + std::to_string(store->manifest().meta.schema_version),
                    "teacher fingerprint and schema of store " + stores[i]);
    check_store_fits(*store, ci, data, run.job.model);
    run.job.teacher_fingerprint += "+" + fp;
    run.job.more_stores.push_back(store.get());
    run.more_stores.push_back(std::move(store));
  }
}

// Note [several teachers] (kd/loss.h): teacher.extra_paths run online (teacher.online) or come
// from their stores (store.extra_paths). The lists, weights and keys were checked with the config
// (validate_config), and distill run refuses them before its ranks split.
void open_more_teachers(Communicator& comm, const RunConfig& c, const Dataset& data, StudentRun& run) {
  const auto paths = split_list(c.teacher.extra_paths);
  if (paths.empty()) return;
  DISTILL_CHECK(data.task != "mlm", ConfigError, "teacher.extra_paths: ", data.path,
                " is a masked-LM data set, whose top-k stores cannot be mixed; several teachers are for classifiers");
  if (!c.teacher.online) return open_more_stores(comm, c, data, paths, run);
  for (const auto& p : paths) {
    RunConfig ci = c;
    ci.teacher.path = p;
    run.more_teachers.push_back(open_online_teacher(comm, ci, data));
    run.job.more_online_teachers.push_back(run.more_teachers.back()->model.get());
    run.job.teacher_fingerprint += "+" + run.more_teachers.back()->fingerprint;
  }
}

// train.select: dev_agreement judges by the teacher, or by the ensemble of all teachers.
void set_eval_teacher(Communicator& comm, const RunConfig& c, StudentRun& run) {
  if (!run.online) run.judge = std::make_unique<LoadedTeacher>(load_teacher(c.teacher, comm));
  TrainJob& job = run.job;
  job.eval_teacher = (run.online ? run.online : run.judge)->model.get();
  const auto paths = split_list(c.teacher.extra_paths);
  if (paths.empty()) return;
  if (run.more_teachers.empty())
    for (const auto& p : paths) {
      TeacherOptions o = c.teacher;
      o.path = p;
      run.more_teachers.push_back(std::make_unique<LoadedTeacher>(load_teacher(o, comm)));
    }
  std::vector<TeacherModel*> members{job.eval_teacher};
  for (const auto& t : run.more_teachers) members.push_back(t->model.get());
  run.ensemble = make_ensemble_teacher(members, c.distill.teacher_weight_values(members.size()));
  job.eval_teacher = run.ensemble.get();
}

// Note [unlabeled rows]: a train split without labels needs a teacher and distill.alpha = 0.
void check_labels_needed(const RunConfig& c, const Dataset& data, const TrainJob& job) {
  if (data.task == "mlm" || data.split(c.data.train_split).labeled_rows() > 0) return;
  DISTILL_CHECK(job.store || job.online_teacher, ConfigError, "split ", c.data.train_split, " of ", data.path,
                " has no labels (an unlabeled transfer set): training needs a teacher (store.path or teacher.online) "
                "and distill.alpha: 0");
  DISTILL_CHECK(c.distill.alpha == 0, ConfigError, "split ", c.data.train_split, " of ", data.path,
                " has no labels (an unlabeled transfer set) but distill.alpha = ", c.distill.alpha,
                " weights the hard-label loss: set distill.alpha: 0");
}

// train.select needs a dev split, labeled for accuracy and F1, a teacher for agreement.
void check_select(const RunConfig& c, const Dataset& data) {
  const auto what = name(c.train.select);
  DISTILL_CHECK(data.splits.count(c.data.eval_split) && data.split(c.data.eval_split).n > 0, ConfigError,
                "train.select: ", what, " evaluates data.eval_split '", c.data.eval_split, "', which ", data.path,
                " does not have (or is empty)");
  DISTILL_CHECK(c.train.select == Select::kDevAgreement || data.split(c.data.eval_split).labeled_rows() > 0,
                ConfigError, "train.select: ", what, " needs labels; split ", c.data.eval_split, " of ", data.path,
                " has none (use dev_agreement)");
  DISTILL_CHECK(c.train.select != Select::kDevAgreement || !c.teacher.path.empty(), ConfigError,
                "train.select: dev_agreement compares with the teacher: set teacher.path");
  DISTILL_CHECK(c.train.select != Select::kDevF1 || data.task != "mlm", ConfigError,
                "train.select: dev_f1 is for classifiers; ", data.path, " is a masked-LM data set");
  const bool for_regression = c.train.select == Select::kDevPearson || c.train.select == Select::kDevSpearman;
  DISTILL_CHECK(for_regression == data.regression, ConfigError, "train.select: ", what, " is for ",
                for_regression ? "regression" : "classification", " data; ", data.path, " is ",
                data.regression ? "a regression data set (use dev_pearson or dev_spearman)"
                                : "not a regression data set (use dev_accuracy, dev_f1 or dev_agreement)");
}

// Note [regression]: one output, and a soft term that compares outputs (mse).
void check_regression(const RunConfig& c, const Dataset& data, const TrainJob& job) {
  if (!data.regression) return;
  const bool teacher = job.store || job.online_teacher;
  DISTILL_CHECK(!teacher || c.distill.soft_loss == SoftLoss::kMse, ConfigError, data.path,
                " is a regression data set (one output): set distill.soft_loss: mse (", name(c.distill.soft_loss),
                " compares softmax distributions, constant for one output)");
}

}  // namespace

std::unique_ptr<StudentRun> open_student_run(Communicator& comm, const RunConfig& c, bool resume, int teachers) {
  auto run = std::make_unique<StudentRun>(c.data.path);
  const Dataset& data = run->data;
  comm.check_same(data.content_hash, "dataset hash");
  TrainJob& job = run->job;
  job.data = &data;
  job.train_split = c.data.train_split;
  job.eval_split = c.data.eval_split;
  set_student(comm, c, data, job);
  job.kd = c.distill;
  job.opt = c.train;
  job.resume = resume;
  job.config_yaml = dump_config(c);
  job.config_hash = config_hash(c);
  job.layers = c.layers;
  job.after_checkpoint = fault_after_checkpoint();
  if (c.teacher.online) {
    run->online = open_online_teacher(comm, c, data);
    job.online_teacher = run->online->model.get();
    job.teacher_fingerprint = run->online->fingerprint;
  }
  if (!c.store.path.empty()) run->store = open_store(comm, c, data, teachers, job);
  open_more_teachers(comm, c, data, *run);
  check_labels_needed(c, data, job);
  check_regression(c, data, job);
  if (c.train.select != Select::kNone) {
    check_select(c, data);
    if (c.train.select == Select::kDevAgreement) set_eval_teacher(comm, c, *run);
  }
  DISTILL_CHECK(data.task == "mlm" || job.model.num_labels == data.num_labels(), DataError,
                "student.num_labels = ", job.model.num_labels, " but data set ", data.path, " has ", data.num_labels(),
                " labels");
  return run;
}

}  // namespace distill
