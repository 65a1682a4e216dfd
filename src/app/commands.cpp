#include "distill/app/commands.h"
#include "distill/app/table.h"

#include <dlfcn.h>
#include <sched.h>
#include <torch/torch.h>

#include <filesystem>
#include <spdlog/fmt/fmt.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "distill/app/faults.h"
#include "distill/data/sampler.h"
#include "distill/kd/layer_map.h"
#include "distill/kd/loss.h"
#include "distill/model/hf.h"
#include "distill/data/batch.h"
#include "distill/model/load.h"
#include "distill/model/weights.h"
#include "distill/store/reader.h"
#include "distill/train/checkpoint.h"
#include "distill/train/eval.h"
#include "distill/model/device.h"
#include "distill/comm/mpi.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"
#include "distill/util/text.h"

namespace distill {

namespace fs = std::filesystem;

RankCpus this_rank_cpus() {
  // The cores this process may run on (a batch system's cpuset, mpirun's binding), not every core
  // of the node.
  RankCpus r;
  r.host = host_name();
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) r.cpus.push_back(i);
  }
  if (r.cpus.empty())
    for (int i = 0; i < static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); ++i) r.cpus.push_back(i);
  return r;
}

namespace {

int usable_cores() { return static_cast<int>(this_rank_cpus().cpus.size()); }

bool overlap(const std::vector<int>& a, const std::vector<int>& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) return true;
    if (a[i] < b[j])
      ++i;
    else
      ++j;
  }
  return false;
}

std::string cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (int c : cpus) out += (out.empty() ? "" : ",") + std::to_string(c);
  return out;
}

}  // namespace

std::vector<RankCpus> gather_rank_cpus(Communicator& comm) {
  const auto me = this_rank_cpus();
  std::vector<RankCpus> out;
  for (const auto& s : comm.allgather_string(me.host + "\n" + cpu_list(me.cpus))) {
    RankCpus r;
    const auto nl = s.find('\n');
    r.host = s.substr(0, nl);
    for (const auto& c : split(s.substr(nl + 1), ','))
      if (!c.empty()) r.cpus.push_back(std::stoi(c));
    out.push_back(std::move(r));
  }
  return out;
}

int ranks_sharing_cpus(const std::vector<RankCpus>& ranks, int self) {
  const auto& me = ranks.at(static_cast<std::size_t>(self));
  int n = 0;
  for (const auto& r : ranks) n += r.host == me.host && overlap(r.cpus, me.cpus);
  return std::max(1, n);
}

ThreadCheck assess_threads(const std::vector<RankCpus>& ranks, int self, int threads) {
  const auto& me = ranks.at(static_cast<std::size_t>(self));
  ThreadCheck c;
  c.cores = static_cast<int>(me.cpus.size());
  c.ranks = 0;
  std::set<int> node;
  bool shared = false;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i].host != me.host) continue;
    ++c.ranks;
    node.insert(ranks[i].cpus.begin(), ranks[i].cpus.end());
    for (std::size_t k = 0; k < i; ++k)
      if (ranks[k].host == me.host && overlap(ranks[k].cpus, ranks[i].cpus)) shared = true;
  }
  c.node_cores = static_cast<int>(node.size());
  const bool rank_ok = threads <= c.cores;
  const bool node_ok = static_cast<long>(c.ranks) * threads <= c.node_cores;
  c.ok = rank_ok && node_ok;
  c.summary =
      str(c.ranks, " ranks on this node x ", threads, " threads; this rank may use ", c.cores, " cores, the ", c.ranks,
          " ranks ", c.node_cores, " cores", shared ? " (shared between ranks)" : " (one set per rank)", ": ",
          c.ok       ? "ok"
          : !rank_ok ? "OVERSUBSCRIBED (more threads than this rank's cores)"
                     : "OVERSUBSCRIBED (ranks x threads exceed the node's cores)");
  return c;
}

ThreadCheck check_threads(const std::vector<RankCpus>& ranks, int self) {
  const int intra_op = at::get_num_threads();
  int blas = -1;
  using GetThreads = int (*)();
  for (const char* sym : {"openblas_get_num_threads", "mkl_get_max_threads"})
    if (auto f = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, sym))) {
      blas = f();
      break;
    }
  auto c = assess_threads(ranks, self, std::max(intra_op, blas));
  c.intra_op = intra_op;
  c.blas = blas;
  c.summary += str(" [intra-op ", intra_op, blas >= 0 ? str(", BLAS ", blas) : std::string(", BLAS pool unknown"), "]");
  return c;
}

ThreadCheck check_threads(int local_ranks) {
  std::vector<RankCpus> ranks(static_cast<std::size_t>(std::max(1, local_ranks)), this_rank_cpus());
  return check_threads(ranks, 0);
}

int size_threads(int requested, int local_ranks, const std::string& what) {
  const int cores = usable_cores();
  DISTILL_CHECK(requested <= kThreadsPerCore * cores, ConfigError, what, " = ", requested, " exceeds ", kThreadsPerCore,
                " threads per core of the ", cores,
                " cores this rank may use; 0 sizes the pools "
                "from the cores");
  const int n = requested > 0 ? requested : std::max(1, cores / std::max(1, local_ranks));
  torch::set_num_threads(n);
  // BLAS keeps its own pool: size it too when the library offers the call.
  using SetThreads = void (*)(int);
  for (const char* sym : {"openblas_set_num_threads", "goto_set_num_threads", "mkl_set_num_threads"})
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, sym))) f(n);
  return n;
}

RunConfig resolve_config(Communicator& comm, const RunArgs& a) {
  RunConfig c;
  if (!a.config_path.empty()) load_config_file(c, a.config_path);
  for (const auto& o : a.overrides) apply_override(c, o);
  validate_config(c);
  mpi_set_timeout(c.train.comm_timeout);  // Note [MPI watchdog]: no collective waits past it
  const auto cpus = gather_rank_cpus(comm);
  const int threads = size_threads(static_cast<int>(c.train.threads), ranks_sharing_cpus(cpus, comm.rank()));
  const auto tc = check_threads(cpus, comm.rank());
  if (comm.rank() == 0 && !tc.ok) spdlog::warn("threads: {}; lower train.threads", tc.summary);
  if (comm.rank() == 0)
    spdlog::info("resolved config (hash {}), {} threads per rank:\n{}", config_hash(c), threads, dump_config(c));
  comm.check_same(config_hash(c), "config hash");
  return c;
}

std::unique_ptr<DirLock> lock_job_dir(Communicator& comm, const std::string& dir, const std::string& job) {
  std::unique_ptr<DirLock> lock;
  std::string error;
  if (comm.rank() == 0) {
    try {
      lock = std::make_unique<DirLock>(dir, job);
      const int n = remove_stale_temporaries(dir) + remove_stale_temporaries(checkpoints_dir(dir));
      if (n > 0) spdlog::warn("{}: removed {} leftovers of interrupted writes (*.tmp-*)", dir, n);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  comm.broadcast_string(error, 0);
  if (!error.empty()) throw ConfigError(error);
  return lock;
}

void cmd_prepare_synthetic(Communicator& comm, const SyntheticOptions& o, const std::string& out) {
  if (comm.rank() == 0) {
    if (!parent_dir(out).empty()) fs::create_directories(parent_dir(out));
    const auto hash = write_synthetic(out, o);
    spdlog::info("wrote {}: train {}, dev {}, test {} examples of length {}, {} labels, content hash {}", out, o.train,
                 o.dev, o.test, o.seq, o.num_labels, hash);
  }
  comm.barrier();
}

namespace {

// Runs teacher c.teacher.path over the train split into store c.store.path (resumable).
void precompute_store(Communicator& comm, const RunConfig& c, const RunArgs& a, const Dataset& data) {
  auto lock = lock_job_dir(comm, c.store.path, "distill precompute -c " + a.config_path);
  const auto teacher = load_teacher(c.teacher, comm);
  TargetSpec spec;
  if (!c.layers.hidden_map.empty() || !c.layers.attention_map.empty()) {
    const long layers = storable_teacher_layers(teacher);
    spec.intermediate = true;
    spec.hidden_layers = teacher_layers_of(
        parse_layer_map(c.layers.hidden_map, c.student.layers, layers, "hidden", "distill.hidden_map"));
    const auto attention = teacher_layers_of(
        parse_layer_map(c.layers.attention_map, c.student.layers, layers, "attention", "distill.attention_map"));
    // The relation loss compares Q-Q, K-K and V-V relations: it needs Q/K/V, not attention maps.
    (c.layers.attention_loss == AttentionLoss::kRelation ? spec.qkv_layers : spec.attention_layers) = attention;
  }
  spec.temperature = c.distill.temperature;
  auto r = precompute(comm, data, c.data.train_split, teacher, c.teacher, c.store, spec, fault_precompute_hooks());
  if (comm.rank() == 0)
    spdlog::info(
        "precompute done: {} shards written, {} already committed, {} examples in {:.1f}s ({:.0f}/s on {} "
        "ranks), store {} bytes",
        r.shards_written, r.shards_skipped, r.examples_computed, r.seconds,
        r.seconds > 0 ? r.examples_computed / r.seconds : 0.0, comm.size(), r.store_bytes);
}


}  // namespace

void cmd_precompute(Communicator& comm, const RunArgs& a) {
  auto c = resolve_config(comm, a);
  DISTILL_CHECK(!c.store.path.empty(), ConfigError, "distill precompute writes the store: set store.path");
  const auto teachers = split_list(c.teacher.extra_paths), stores = split_list(c.store.extra_paths);
  DISTILL_CHECK(teachers.size() == stores.size(), ConfigError, "teacher.extra_paths names ", teachers.size(),
                " teachers and store.extra_paths ", stores.size(), " stores: give each further teacher its store");
  auto data = read_dataset(c.data.path);
  DISTILL_CHECK(teachers.empty() || data.task != "mlm", ConfigError, "teacher.extra_paths: ", c.data.path,
                " is a masked-LM data set, whose top-k stores cannot be mixed; several teachers are for classifiers");
  for (const auto& t : teachers) teacher_fingerprint(t);  // every teacher is there before the first store starts
  precompute_store(comm, c, a, data);
  for (std::size_t i = 0; i < teachers.size(); ++i) {
    RunConfig ci = c;
    ci.teacher.path = teachers[i];
    ci.store.path = stores[i];
    if (comm.rank() == 0) spdlog::info("teacher {} of {}: {} into {}", i + 2, teachers.size() + 1, teachers[i], stores[i]);
    precompute_store(comm, ci, a, data);
  }
}

void cmd_export(Communicator& comm, const RunArgs& a, const std::string& checkpoint, const std::string& out,
                const std::string& vocab) {
  auto c = resolve_config(comm, a);
  if (comm.rank() == 0) {
    const std::string ck = checkpoint.empty() ? checkpoints_dir(c.train.out_dir) : checkpoint;
    auto m = load_model(ck);
    std::vector<std::string> labels;
    if (!c.data.path.empty()) labels = read_dataset(c.data.path).label_names;
    export_hf_dir(out, *m.model, labels, vocab);
    spdlog::info("exported {} to {} (config.json, model.safetensors{}), {} labels", m.file, out,
                 vocab.empty() ? "" : ", vocab.txt", m.model->config().num_labels);
  }
  comm.barrier();
}

std::vector<std::pair<std::string, std::string>> eval_sets(const RunConfig& c, const std::vector<std::string>& datas,
                                                           const std::vector<std::string>& splits) {
  const std::vector<std::string> paths = datas.empty() ? std::vector<std::string>{c.data.path} : datas;
  std::vector<std::pair<std::string, std::string>> sets;
  if (paths.size() == 1) {
    for (const auto& s : splits.empty() ? std::vector<std::string>{c.data.test_split} : splits)
      sets.emplace_back(paths[0], s);
    return sets;
  }
  DISTILL_CHECK(splits.size() <= 1 || splits.size() == paths.size(), ConfigError, "--split is given ", splits.size(),
                " times for ", paths.size(), " --data; give it once (for every data set) or once per --data");
  for (std::size_t i = 0; i < paths.size(); ++i)
    sets.emplace_back(paths[i], splits.empty() ? c.data.test_split : splits.size() == 1 ? splits[0] : splits[i]);
  return sets;
}

namespace {

bool is_regression(const nlohmann::json& set) { return set.value("task", "") == "regression"; }

std::string number_or_dash(const nlohmann::json& v) {
  return v.is_null() ? std::string("-") : fmt::format("{:.4f}", v.get<double>());
}

// Regression sets as one table (Note [regression]).
void print_regression_table(const nlohmann::json& sets, bool teacher) {
  Table t;
  t.rows.push_back({"data set : split", "examples", "MSE", "Pearson", "Spearman"});
  if (teacher) t.rows[0].insert(t.rows[0].end(), {"teacher MSE", "teacher Pearson", "MSE(t, s)", "Pearson(t, s)"});
  for (const auto& s : sets) {
    t.rows.push_back({s["data"].get<std::string>() + " : " + s["split"].get<std::string>(),
                      std::to_string(s["examples"].get<std::int64_t>()), number_or_dash(s["mse"]),
                      number_or_dash(s["pearson"]), number_or_dash(s["spearman"])});
    if (teacher)
      t.rows.back().insert(t.rows.back().end(),
                           {number_or_dash(s["teacher_mse"]), number_or_dash(s["teacher_pearson"]),
                            number_or_dash(s["mse_teacher_student"]), number_or_dash(s["pearson_teacher_student"])});
  }
  t.print();
}

// The evaluated sets as one table (text output of several sets).
void print_eval_table(const nlohmann::json& sets, bool teacher) {
  if (is_regression(sets[0])) return print_regression_table(sets, teacher);
  Table t;
  t.rows.push_back({"data set : split", "examples", "accuracy", "macro-F1", "MCC"});
  if (teacher) t.rows[0].insert(t.rows[0].end(), {"teacher", "agreement", "risk", "KL"});
  const auto num = number_or_dash;
  for (const auto& s : sets) {
    t.rows.push_back({s["data"].get<std::string>() + " : " + s["split"].get<std::string>(),
                      std::to_string(s["examples"].get<std::int64_t>()), num(s["accuracy"]),
                      num(s.value("macro_f1", nlohmann::json())), num(s.value("mcc", nlohmann::json()))});
    if (teacher)
      t.rows.back().insert(t.rows.back().end(), {num(s["teacher_accuracy"]), num(s["agreement"]),
                                                 num(s["transfer_risk"]), num(s["kl_teacher_student"])});
  }
  t.print();
}

// The teachers eval compares with: teacher.path, and with teacher.extra_paths each of them and
// their ensemble (Note [several teachers]), which then is the one `judge` points to.
struct EvalTeachers {
  std::vector<std::unique_ptr<LoadedTeacher>> loaded;  // teacher.path, then teacher.extra_paths
  std::vector<double> weights;
  std::unique_ptr<TeacherModel> ensemble;
  TeacherModel* judge = nullptr;
};

EvalTeachers eval_teachers(Communicator& comm, const RunConfig& c) {
  EvalTeachers t;
  if (c.teacher.path.empty()) return t;
  std::vector<std::string> paths{c.teacher.path};
  for (const auto& p : split_list(c.teacher.extra_paths)) paths.push_back(p);
  for (const auto& p : paths) {
    TeacherOptions o = c.teacher;
    o.path = p;
    t.loaded.push_back(std::make_unique<LoadedTeacher>(load_teacher(o, comm)));
  }
  t.judge = t.loaded[0]->model.get();
  if (paths.size() == 1) return t;
  t.weights = c.distill.teacher_weight_values(paths.size());
  std::vector<TeacherModel*> members;
  for (const auto& l : t.loaded) members.push_back(l->model.get());
  t.ensemble = make_ensemble_teacher(members, t.weights);
  t.judge = t.ensemble.get();
  return t;
}

// One set: the student against the teacher (or ensemble), and each teacher of an ensemble.
nlohmann::json evaluate_set(Communicator& comm, NetworkImpl& student, const EvalTeachers& t, const DataSplit& split,
                            const RunConfig& c, c10::ScalarType precision) {
  auto j = to_json(evaluate(comm, student, t.judge, split, c.train.eval_batch_size, precision));
  if (!t.ensemble) return j;
  j["teachers"] = nlohmann::json::array();
  const auto keys = is_regression(j) ? std::vector<std::string>{"teacher_mse", "teacher_pearson", "teacher_spearman",
                                                                  "mse_teacher_student", "pearson_teacher_student"}
                                      : std::vector<std::string>{"teacher_accuracy", "agreement", "transfer_risk",
                                                                  "kl_teacher_student"};
  for (std::size_t i = 0; i < t.loaded.size(); ++i) {
    const auto r = to_json(evaluate(comm, student, t.loaded[i]->model.get(), split, c.train.eval_batch_size, precision));
    nlohmann::json one = {{"teacher", t.loaded[i]->file}, {"weight", t.weights[i]}};
    for (const auto& k : keys) one[k] = r[k];
    j["teachers"].push_back(one);
  }
  return j;
}

// The text form of one evaluated regression set.
void print_regression_set(const nlohmann::json& r, bool teacher) {
  const auto line = [&](const std::string& what, const nlohmann::json& v) {
    std::cout << "  " << what << std::string(what.size() < 26 ? 26 - what.size() : 1, ' ') << number_or_dash(v)
              << "\n";
  };
  line("student MSE", r["mse"]);
  line("student Pearson", r["pearson"]);
  line("student Spearman", r["spearman"]);
  if (!teacher) return;
  const std::string who = r.contains("teachers") ? "ensemble" : "teacher";
  line(who + " MSE", r["teacher_mse"]);
  line(who + " Pearson", r["teacher_pearson"]);
  line(who + " Spearman", r["teacher_spearman"]);
  line("MSE(" + who + ", student)", r["mse_teacher_student"]);
  line("Pearson(" + who + ", student)", r["pearson_teacher_student"]);
  for (const auto& t : r.value("teachers", nlohmann::json::array()))
    std::cout << "  teacher " << t["teacher"].get<std::string>() << " (weight " << t["weight"].get<double>()
              << "): MSE " << number_or_dash(t["teacher_mse"]) << ", Pearson " << number_or_dash(t["teacher_pearson"])
              << ", MSE(teacher, student) " << number_or_dash(t["mse_teacher_student"]) << "\n";
}

// The text form of one evaluated set.
void print_eval_set(const nlohmann::json& r, bool teacher) {
  std::cout << "split " << r["split"].get<std::string>() << " of " << r["data"].get<std::string>() << ", "
            << r["examples"].get<std::int64_t>() << " examples, " << r["labeled"].get<std::int64_t>() << " labeled\n";
  if (is_regression(r)) return print_regression_set(r, teacher);
  if (!r["accuracy"].is_null()) std::cout << "  student accuracy      " << r["accuracy"].get<double>() << "\n";
  if (r.contains("macro_f1") && !r["macro_f1"].is_null())
    std::cout << "  student macro-F1      " << r["macro_f1"].get<double>() << "\n"
              << "  student MCC           " << r["mcc"].get<double>() << "\n";
  if (!teacher) return;
  const std::string who = r.contains("teachers") ? "ensemble" : "teacher";
  if (!r["teacher_accuracy"].is_null())
    std::cout << "  " << who << " accuracy" << std::string(13 - who.size(), ' ') << r["teacher_accuracy"].get<double>()
              << "\n";
  std::cout << "  top-1 agreement       " << r["agreement"].get<double>() << "\n"
            << "  transfer risk         " << r["transfer_risk"].get<double>() << "\n"
            << "  KL(" << who << "||student) " << std::string(8 - who.size(), ' ')
            << r["kl_teacher_student"].get<double>() << "\n";
  for (const auto& t : r.value("teachers", nlohmann::json::array()))
    std::cout << "  teacher " << t["teacher"].get<std::string>() << " (weight " << t["weight"].get<double>()
              << "): accuracy " << number_or_dash(t["teacher_accuracy"])
              << ", agreement " << t["agreement"].get<double>() << ", KL " << t["kl_teacher_student"].get<double>()
              << "\n";
}

}  // namespace

void cmd_eval(Communicator& comm, const RunArgs& a, const std::string& checkpoint,
              const std::vector<std::string>& datas, const std::vector<std::string>& splits, bool json) {
  auto c = resolve_config(comm, a);
  const auto sets = eval_sets(c, datas, splits);
  const std::string ck = checkpoint.empty() ? checkpoints_dir(c.train.out_dir) : checkpoint;
  auto student = load_model(ck);
  const auto device = resolve_device(c.train.device, comm.local_rank(), "train.device");
  student.model->to(device);
  const auto teachers = eval_teachers(comm, c);
  const auto precision = train_precision(c.train, device, comm.rank() == 0);
  // Every set is opened and checked before the first is evaluated.
  std::map<std::string, Dataset> opened;
  for (const auto& [path, split] : sets) {
    if (!opened.count(path)) opened.emplace(path, read_dataset(path));
    const auto& data = opened.at(path);
    DISTILL_CHECK(data.split(split).n > 0, DataError, path, ": split '", split, "' is empty: nothing to evaluate");
    const auto& sc = student.model->config();
    if (sc.is_bert())
      check_fits_model(data, split, sc.vocab_size, sc.type_vocab, sc.max_positions, "student " + student.file);
    DISTILL_CHECK(data.task == "mlm" || sc.num_labels == 0 || sc.num_labels == data.num_labels(), DataError, path,
                  " has ", data.num_labels(), " labels, student ", student.file, " has ", sc.num_labels);
    for (const auto& t : teachers.loaded)
      if (const auto* tc = t->model->config(); tc && tc->is_bert())
        check_fits_model(data, split, tc->vocab_size, tc->type_vocab, tc->max_positions, "teacher " + t->file);
  }
  nlohmann::json results = nlohmann::json::array();
  for (const auto& [path, split] : sets) {
    auto j = evaluate_set(comm, *student.model, teachers, opened.at(path).split(split), c, precision);
    j["data"] = path;
    j["split"] = split;
    results.push_back(j);
  }
  if (comm.rank() != 0) return;
  nlohmann::json j = results.size() == 1 ? results[0] : nlohmann::json{{"sets", results}};
  j["precision"] = precision_name(precision);
  j["student"] = student.file;
  j["student_parameters"] = parameter_count(*student.model);
  if (!teachers.loaded.empty()) {
    const auto& first = *teachers.loaded[0];
    j["teacher_precision"] = precision_name(first.precision);
    std::string files = first.file;
    for (std::size_t i = 1; i < teachers.loaded.size(); ++i) files += " + " + teachers.loaded[i]->file;
    j["teacher"] = files;
    j["teacher_kind"] = teachers.judge->kind();
    j["teacher_parameters"] = teachers.judge->parameters();
  }
  if (json)
    std::cout << j.dump(2) << std::endl;
  else if (results.size() > 1)
    print_eval_table(results, teachers.judge != nullptr);
  else
    print_eval_set(results[0], teachers.judge != nullptr);
}

}  // namespace distill
