// The distill subcommands. Each is a collective over `comm` (every rank calls it) and throws a
// distill::Error on failure; main() turns that into a logged message and the end of the job.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "distill/app/config.h"
#include "distill/comm/communicator.h"
#include "distill/data/mix.h"
#include "distill/data/prepare.h"
#include "distill/data/synthetic.h"

#include "distill/util/lock.h"

namespace distill {

struct RunArgs {
  std::string config_path;
  std::vector<std::string> overrides;  // "section.key=value"
};

// Runs `work` on rank 0 only. Collective: its error is rethrown there and thrown as a DataError
// with the same message on the other ranks, so none waits on a rank that failed.
void run_on_rank0(Communicator& comm, const std::function<void()>& work);

// Loads, overrides and validates the config; rank 0 prints it; every rank checks the same hash.
RunConfig resolve_config(Communicator& comm, const RunArgs& a);

// One job per directory (util/lock.h): rank 0 of `comm` takes the lock of `dir` and removes stale
// temporaries of interrupted writes there and in `dir`/checkpoints; a refusal is thrown on every
// rank. Collective. Other ranks get null.
std::unique_ptr<DirLock> lock_job_dir(Communicator& comm, const std::string& dir, const std::string& job);

void cmd_prepare_synthetic(Communicator& comm, const SyntheticOptions& o, const std::string& out);
// Rank 0 tokenizes the table and writes `out`; prints the split sizes and bad-row count.
void cmd_prepare_text(Communicator& comm, const PrepareOptions& o, const std::string& out);
// distill augment (Note [augmentation] in data/augment.h): rank 0 writes `copies` augmented,
// unlabeled copies of split `split` of `input` as the train split of `out`.
struct AugmentOptions {
  std::string input, split = "train", out;
  std::int64_t copies = 4;
  double share = 0.15;  // text: share of the replaceable word pieces replaced
  std::uint64_t seed = 1;
  std::string vocab;  // text: the vocab.txt the data set was prepared with
  std::string mlm;    // text: masked LM proposing replacements (empty: random pieces)
  long top_k = 8, batch = 64;
  double noise = 0;  // features: Gaussian noise, in standard deviations of each feature
  double mixup = 0;  // features: mixup with lambda ~ Beta(mixup, mixup)
};
void cmd_augment(Communicator& comm, const AugmentOptions& o);
// Rank 0 writes the mix of data sets (data/mix.h) to `out`.
void cmd_mix(Communicator& comm, const MixOptions& o, const std::string& out);
void cmd_precompute(Communicator& comm, const RunArgs& a);
void cmd_train(Communicator& comm, const RunArgs& a, bool resume);
// Streaming: the first `teacher_ranks` (else teacher.ranks) ranks precompute into store.path while
// the others train on each shard once it is committed (first epoch in shard order, shuffled within
// windows of store.window shards). It always resumes: rerunning after a kill continues both sides
// (teachers skip committed shards, students start from their latest checkpoint).
void cmd_run(Communicator& comm, const RunArgs& a, long teacher_ranks);
// Evaluates `checkpoint` (default: train.out_dir's latest) on `split` (default: data.test_split).
// Evaluates the student (and teacher) on each (data set, split): the config's data.path and
// data.test_split by default; --data and --split repeat (one data set with several splits, one split
// for several data sets, or one split per data set). One set prints as before; several print one
// table (JSON: {"sets": [...]}, each with its data and split).
void cmd_eval(Communicator& comm, const RunArgs& a, const std::string& checkpoint,
              const std::vector<std::string>& datas, const std::vector<std::string>& splits, bool json);
// distill curve (Note [transfer curve] in app/curve.cpp): distils the student of the config on nested
// subsets of sizes n1 < n2 < ... of the train split, evaluates transfer risk, KL and accuracy on the
// held-out sets (--data / --split as in eval), fits risk ~ c (log n / n)^kappa, and writes
// OUT/curve.json, OUT/curve.svg and a table.
struct CurveOptions {
  std::vector<std::int64_t> sizes;
  int groups = 1;   // groups of ranks running sizes side by side
  std::string out;  // directory
  std::vector<std::string> datas, splits;
  std::uint64_t subset_seed = 0;  // 0 = train.seed
  double fit_below = -1;          // fit on n < this; 0 = every n; -1 = the feature count (features), else 0
  bool json = false;
};
void cmd_curve(Communicator& comm, const RunArgs& a, const CurveOptions& o);
// The (data set, split) pairs of `distill eval` (ConfigError when --split cannot be paired).
std::vector<std::pair<std::string, std::string>> eval_sets(const RunConfig& c, const std::vector<std::string>& datas,
                                                           const std::vector<std::string>& splits);
// Summarises a file or directory. A store is judged by what it holds (store/verify.h); with
// `verify` its shard digests are checked too. Throws StoreError after the report when the store is
// broken, so the exit status is non-zero.
void cmd_inspect(const std::string& path, bool json, bool verify = false);
// Writes `checkpoint` (default: train.out_dir's latest) as a Hugging Face BertForSequenceClassification
// directory, with the data set's label names and `vocab` copied in when given.
void cmd_export(Communicator& comm, const RunArgs& a, const std::string& checkpoint, const std::string& out,
                const std::string& vocab);

// Masked LM: on `split` (default data.eval_split), the teacher's real outputs and the student's
// (train.out_dir's latest) logits at masked tokens; prints, for k in `ks`, bytes per masked token
// of a top-k store (float16 values) and the gap between the top-k and the dense soft-target loss.
void cmd_bench_topk(Communicator& comm, const RunArgs& a, const std::string& split, const std::vector<long>& ks,
                    bool json);

// The most threads per core a rank may ask for (see kMaxThreads).
constexpr int kThreadsPerCore = 4;

// Intra-op and BLAS threads per rank: `requested` if > 0, else usable cores / `local_ranks`.
// Throws ConfigError naming `what` when `requested` exceeds kThreadsPerCore x usable cores.
int size_threads(int requested, int local_ranks, const std::string& what = "train.threads");

// The CPUs one rank may run on (its affinity mask), on a named host.
struct RankCpus {
  std::string host;
  std::vector<int> cpus;  // sorted CPU ids
};
// This process's affinity mask.
RankCpus this_rank_cpus();
// Every rank's RankCpus, in rank order. Collective over `comm`.
std::vector<RankCpus> gather_rank_cpus(Communicator& comm);
// Ranks on `self`'s host whose CPUs overlap `self`'s (itself included): the ranks its default
// threads share its cores with.
int ranks_sharing_cpus(const std::vector<RankCpus>& ranks, int self);

// Whether the ranks on this node stay within its cores, counting LibTorch's intra-op pool and the
// BLAS pool (read back from the library when it tells). A rank is within its cores when its threads
// fit its own CPUs; the node when, besides, ranks x threads fit the union of the ranks' CPUs (ranks
// bound to disjoint cores never share them; ranks sharing cores split them).
struct ThreadCheck {
  int cores = 0, ranks = 1, intra_op = 0, blas = -1;  // cores: of this rank; blas -1 = the library does not say
  int node_cores = 0;                                 // the union of the node's ranks' CPUs
  bool ok = true;
  std::string summary;
};
// Pure: `threads` per rank, the node's ranks being those of `ranks` on `self`'s host.
ThreadCheck assess_threads(const std::vector<RankCpus>& ranks, int self, int threads);
// This process's pools against `ranks` (from gather_rank_cpus).
ThreadCheck check_threads(const std::vector<RankCpus>& ranks, int self);
// As if `local_ranks` ranks shared this process's CPUs.
ThreadCheck check_threads(int local_ranks);

// distill bench: synthetic data through the real code paths (see docs in the README).
struct BenchOptions {
  std::string what;                   // train | precompute | allreduce | store | data
  ModelConfig model = bench_model();  // the student (train) or teacher (precompute)
  long seq = 128, batch = 16;         // sequence length; examples per rank and step
  long steps = 30, warmup = 5;        // timed steps after warm-up steps (train)
  long examples = 4096;               // precompute: examples; store: rows of the store
  long store_labels = 1000;           // store: logits per row
  // Read: threads (0 = usable cores / ranks on the node), device and precision (every bench), and
  // prefetch, bucket_mb and reduce (train), with train.*'s defaults and meaning.
  TrainOptions train;
  std::string work_dir = ".runs/bench", json_out;
  // The issue-6 bench student: BERT hidden 256, 4 layers, 4 heads, intermediate 1024, BERT's
  // vocabulary, 2 labels, dropout 0.1.
  static ModelConfig bench_model() {
    ModelConfig c;
    c.vocab_size = 30522;
    c.hidden = 256;
    c.layers = 4;
    c.heads = 4;
    c.intermediate = 1024;
    c.max_positions = 512;
    c.num_labels = 2;
    return c;
  }
};
void cmd_bench(Communicator& comm, const BenchOptions& o);

}  // namespace distill
