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

}  // namespace distill
