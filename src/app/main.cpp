// distill: prepare, precompute, train, run, eval, report, export, bench, inspect. Launched directly or under mpirun.
#include <CLI/CLI.hpp>

#include <c10/util/Exception.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>

#include "distill/app/commands.h"
#include "distill/app/config.h"
#include "distill/app/report.h"
#include "distill/comm/mpi.h"
#include "distill/util/error.h"
#include "distill/util/lock.h"
#include "distill/util/log.h"

namespace distill {
namespace {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"})
    if (std::getenv(v)) return true;
  return false;
}

// Spinning OpenMP workers starve BLAS threads when cores are few (measured on 2 cores: 136 vs 405
// samples/s). libgomp reads OMP_WAIT_POLICY only at load, so set it and re-execute once.
void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then go on as we are
}

// Blocks of 32 MiB and more (gradient buckets, the embedding gradient, MPI's reduction buffers) would
// otherwise be mmapped and unmapped on every use, page-faulting each time: glibc's adaptive mmap
// threshold stops growing at 32 MiB. Measured with `distill bench allreduce` on 2 ranks: 32 MiB
// took 65 ms (0.5 GB/s) against 5.8 ms with large blocks kept in the heap. An explicit
// MALLOC_MMAP_THRESHOLD_ in the environment wins.
void keep_large_blocks() {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_")) return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

// One subcommand. Its options are bound to storage its actions own. `early` (optional) runs after
// parsing, before MPI starts: an exit code >= 0 from it ends the program there. `run` is then
// called on every rank.
struct Command {
  CLI::App* sub = nullptr;
  std::function<int()> early;
  std::function<void(Communicator&)> run;
};
constexpr int kGoOn = -1;  // from Command::early: start the ranks

void add_run_args(CLI::App* sub, RunArgs& a) {
  sub->add_option("-c,--config", a.config_path, "run config (YAML)")->check(CLI::ExistingFile);
  sub->add_option("--set", a.overrides, "override a config field: section.key=value (repeatable)");
}

struct PrepareArgs {
  PrepareOptions text;
  SyntheticOptions syn;
  bool synthetic = false;
  std::string out;
};

// The text, masked-LM and feature options; returns --input.
CLI::Option* add_table_options(CLI::App* sub, PrepareOptions& text) {
  auto* in = sub->add_option("-i,--input", text.input, "table of examples (.csv, .tsv, .jsonl; .h5 with --features)")
                 ->check(CLI::ExistingFile)
                 ->group("Text");
  sub->add_option("--format", text.format, "csv | tsv | jsonl (default: from the extension)")->group("Text");
  sub->add_option("--columns", text.column_names, "column names of a CSV/TSV file without a header row")
      ->delimiter(',')
      ->group("Text");
  sub->add_option("--text-column", text.text_column, "column of the text")->capture_default_str()->group("Text");
  sub->add_option("--pair-column", text.pair_column, "column of the second segment (pairs)")->group("Text");
  sub->add_option("--label-column", text.label_column, "column of the label")->capture_default_str()->group("Text");
  sub->add_option("--labels", text.labels, "label values in class order (default: sorted distinct values)")
      ->delimiter(',')
      ->group("Text");
  sub->add_option("--label-names", text.label_names, "names stored for the classes, one per --labels value")
      ->delimiter(',')
      ->group("Text");
  sub->add_flag("--unlabeled", text.unlabeled,
                "no label column: rows without labels (a transfer set), classes from --label-names or --labels")
      ->group("Text");
  sub->add_flag("--regression", text.regression,
                "the label column (--label-index with --features) holds a real-valued target: one output, "
                "MSE loss, Pearson/Spearman in eval")
      ->group("Text");
  sub->add_option("--vocab", text.vocab, "WordPiece vocab.txt")->check(CLI::ExistingFile)->group("Text");
  sub->add_flag("--cased", text.cased, "keep case and accents (cased vocabularies)")->group("Text");
  sub->add_option("--max-length", text.max_length, "padded length with [CLS]/[SEP]; longer texts are truncated")
      ->capture_default_str()
      ->group("Text");
  sub->add_option("--dev-fraction", text.dev_fraction, "share of rows for dev")->capture_default_str()->group("Text");
  sub->add_option("--test-fraction", text.test_fraction, "share of rows for test")
      ->capture_default_str()
      ->group("Text");
  sub->add_option("--split-seed", text.seed, "seed of the train/dev/test split")->capture_default_str()->group("Text");
  sub->add_flag("--skip-bad-rows", text.skip_bad_rows, "count and skip bad rows instead of stopping at the first")
      ->group("Text");
  sub->add_flag("--mlm", text.mlm, "masked-LM examples from the text column (no labels)")->group("Masked LM");
  sub->add_option("--mask-prob", text.mask_prob, "share of tokens masked")->capture_default_str()->group("Masked LM");
  sub->add_flag("--features", text.features,
                "feature vectors from a CSV of numbers or an HDF5 file "
                "(features, labels)")
      ->group("Features");
  sub->add_option("--label-index", text.label_index, "CSV column of the label (negative: from the end)")
      ->capture_default_str()
      ->group("Features");
  sub->add_flag("--standardize", text.standardize, "z-score features with the train split's mean and std")
      ->group("Features");
  return in;
}

void add_synthetic_options(CLI::App* sub, PrepareArgs& a, CLI::Option* input) {
  sub->add_flag("--synthetic", a.synthetic, "generate the synthetic marker-counting task")
      ->group("Synthetic")
      ->excludes(input);
  SyntheticOptions& syn = a.syn;
  sub->add_option("--train", syn.train, "train examples")->capture_default_str()->group("Synthetic");
  sub->add_option("--dev", syn.dev, "dev examples")->capture_default_str()->group("Synthetic");
  sub->add_option("--test", syn.test, "test examples")->capture_default_str()->group("Synthetic");
  sub->add_option("--vocab-size", syn.vocab_size, "vocabulary size")->capture_default_str()->group("Synthetic");
  sub->add_option("--seq", syn.seq, "padded sequence length")->capture_default_str()->group("Synthetic");
  sub->add_option("--num-labels", syn.num_labels, "number of classes")->capture_default_str()->group("Synthetic");
  sub->add_option("--noise", syn.noise, "share of labels redrawn at random")->capture_default_str()->group("Synthetic");
  sub->add_option("--seed", syn.seed, "generator seed")->capture_default_str()->group("Synthetic");
}

Command add_prepare(CLI::App& app) {
  auto a = std::make_shared<PrepareArgs>();
  auto* sub = app.add_subcommand("prepare", "write a dataset.h5 from a CSV/TSV/JSONL table, or a synthetic task");
  sub->add_option("-o,--out", a->out, "output dataset.h5")->required();
  add_synthetic_options(sub, *a, add_table_options(sub, a->text));
  auto early = [a] {
    if (a->synthetic || !a->text.input.empty()) return kGoOn;
    std::cerr << "prepare: give --input TABLE (with --vocab) or --synthetic\n";
    return 2;
  };
  auto run = [a](Communicator& comm) {
    if (a->synthetic)
      cmd_prepare_synthetic(comm, a->syn, a->out);
    else
      cmd_prepare_text(comm, a->text, a->out);  // text, masked LM or features
  };
  return {sub, early, run};
}

Command add_precompute(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* sub = app.add_subcommand("precompute", "teacher ranks write soft targets into the store");
  add_run_args(sub, *a);
  return {sub, {}, [a](Communicator& comm) { cmd_precompute(comm, *a); }};
}

struct TrainArgs {
  RunArgs run;
  bool resume = false, help_config = false;
};

// --help-config prints the config keys and ends before MPI starts: it needs neither a config nor ranks.
Command add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "student ranks train (on the store's targets when store.path is set)");
  add_run_args(sub, a->run);
  sub->add_flag("--resume", a->resume, "continue from train.out_dir/checkpoints/latest");
  sub->add_flag("--help-config", a->help_config, "print the table of config keys and exit");
  auto early = [a] {
    if (!a->help_config) return kGoOn;
    std::cout << config_help_table() << std::flush;
    return 0;
  };
  return {sub, early, [a](Communicator& comm) { cmd_train(comm, a->run, a->resume); }};
}

Command add_run(CLI::App& app) {
  struct Args {
    RunArgs run;
    long teacher_ranks = 0;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("run",
                                 "streaming: teacher ranks precompute while the other ranks train on each "
                                 "committed shard");
  add_run_args(sub, a->run);
  sub->add_option("--teacher-ranks", a->teacher_ranks, "ranks that run the teacher (default: teacher.ranks)");
  return {sub, {}, [a](Communicator& comm) { cmd_run(comm, a->run, a->teacher_ranks); }};
}

Command add_eval(CLI::App& app) {
  struct Args {
    RunArgs run;
    std::string checkpoint;
    std::vector<std::string> datas, splits;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("eval", "accuracy, teacher agreement, transfer risk and KL on held-out splits");
  add_run_args(sub, a->run);
  sub->add_option("--checkpoint", a->checkpoint, "student checkpoint (default: train.out_dir/checkpoints)");
  sub->add_option("--data", a->datas, "data set to evaluate on (repeatable; default: data.path)");
  sub->add_option("--split", a->splits,
                  "split to evaluate (repeatable: several splits of one --data, one for all, or one per --data; "
                  "default: data.test_split)");
  sub->add_flag("--json", a->json, "print JSON");
  return {sub, {}, [a](Communicator& comm) { cmd_eval(comm, a->run, a->checkpoint, a->datas, a->splits, a->json); }};
}

Command add_augment(CLI::App& app) {
  auto o = std::make_shared<AugmentOptions>();
  auto* sub = app.add_subcommand("augment", "augmented, unlabeled copies of a split (TinyBERT-style, or noise/mixup)");
  sub->add_option("-i,--input", o->input, "dataset.h5")->required()->check(CLI::ExistingFile);
  sub->add_option("-o,--out", o->out, "output dataset.h5 (its train split holds the copies)")->required();
  sub->add_option("--split", o->split, "split to copy")->capture_default_str();
  sub->add_option("--copies", o->copies, "copies per example")->capture_default_str();
  sub->add_option("--share", o->share, "text: share of word pieces replaced per copy")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of every draw")->capture_default_str();
  sub->add_option("--vocab", o->vocab, "text: the data set's vocab.txt")->check(CLI::ExistingFile);
  sub->add_option("--mlm", o->mlm,
                  "text: masked LM proposing pieces (bert_mlm model or checkpoint, or HF "
                  "BertForMaskedLM directory); default: random pieces");
  sub->add_option("--top-k", o->top_k, "text: predictions of the masked LM to draw from")->capture_default_str();
  sub->add_option("--batch", o->batch, "text: rows per masked-LM forward")->capture_default_str();
  sub->add_option("--noise", o->noise, "features: Gaussian noise in standard deviations of each feature");
  sub->add_option("--mixup", o->mixup, "features: mixup with lambda ~ Beta(A, A)");
  return {sub, {}, [o](Communicator& comm) { cmd_augment(comm, *o); }};
}

Command add_mix(CLI::App& app) {
  struct Args {
    std::vector<std::string> sources;
    MixOptions o;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("mix", "one transfer set from several data sets with weights");
  sub->add_option("--source", a->sources,
                  "PATH[:SPLIT][:WEIGHT] (repeatable; split train, weight 1 by default): WEIGHT 2 takes every row "
                  "twice, 0.5 a seeded half")
      ->required();
  sub->add_option("-o,--out", a->out, "output dataset.h5")->required();
  sub->add_option("--eval-from", a->o.eval_from,
                  "data set whose dev and test splits the mix keeps (default: the "
                  "first source; none: no dev or test)");
  sub->add_option("--seed", a->o.seed, "seed of the rows a fractional weight takes")->capture_default_str();
  return {sub, {}, [a](Communicator& comm) {
            a->o.sources.clear();
            for (const auto& s : a->sources) a->o.sources.push_back(parse_mix_source(s));
            cmd_mix(comm, a->o, a->out);
          }};
}

Command add_curve(CLI::App& app) {
  struct Args {
    RunArgs run;
    CurveOptions o;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("curve", "transfer-risk curve: distil on nested subsets of n transfer examples");
  add_run_args(sub, a->run);
  sub->add_option("--sizes", a->o.sizes, "subset sizes n1 < n2 < ... of the train split")->delimiter(',')->required();
  sub->add_option("--out", a->o.out, "directory for curve.json, curve.svg and one run per size")->required();
  sub->add_option("--groups", a->o.groups, "groups of ranks that run sizes side by side")->capture_default_str();
  sub->add_option("--data", a->o.datas, "held-out data set (repeatable; default: data.path)");
  sub->add_option("--split", a->o.splits, "held-out split (repeatable, as in eval; default: data.test_split)");
  sub->add_option("--subset-seed", a->o.subset_seed, "seed of the subsets' permutation (default: train.seed)");
  sub->add_option("--fit-below", a->o.fit_below,
                  "fit on sizes below this (0: all; default: the feature count of a feature data set, else all)");
  sub->add_flag("--json", a->o.json, "print JSON");
  return {sub, {}, [a](Communicator& comm) { cmd_curve(comm, a->run, a->o); }};
}

Command add_export(CLI::App& app) {
  struct Args {
    RunArgs run;
    std::string checkpoint, out, vocab;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("export", "write a student as a Hugging Face BertForSequenceClassification directory");
  add_run_args(sub, a->run);
  sub->add_option("--checkpoint", a->checkpoint, "checkpoint to export (default: train.out_dir/checkpoints)");
  sub->add_option("-o,--out", a->out, "output directory")->required();
  sub->add_option("--vocab", a->vocab, "vocab.txt to copy into the directory")->check(CLI::ExistingFile);
  return {sub, {}, [a](Communicator& comm) { cmd_export(comm, a->run, a->checkpoint, a->out, a->vocab); }};
}

Command add_bench_topk(CLI::App& app) {
  struct Args {
    RunArgs run;
    std::string split;
    std::vector<long> ks = {8, 16, 32, 64, 128};
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("bench-topk", "masked LM: bytes per token and top-k vs dense loss gap for several k");
  add_run_args(sub, a->run);
  sub->add_option("--split", a->split, "split to measure on (default: data.eval_split)");
  sub->add_option("--k", a->ks, "values of k")->delimiter(',')->capture_default_str();
  sub->add_flag("--json", a->json, "print JSON");
  return {sub, {}, [a](Communicator& comm) { cmd_bench_topk(comm, a->run, a->split, a->ks, a->json); }};
}

Command add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench", "throughput on synthetic data: train, precompute, allreduce, store or data");
  sub->add_option("what", o->what, "train | precompute | allreduce | store | data")
      ->required()
      ->check(CLI::IsMember({"train", "precompute", "allreduce", "store", "data"}));
  sub->add_option("--hidden", o->model.hidden, "model width")->capture_default_str();
  sub->add_option("--layers", o->model.layers, "encoder blocks")->capture_default_str();
  sub->add_option("--heads", o->model.heads, "attention heads")->capture_default_str();
  sub->add_option("--intermediate", o->model.intermediate, "feed-forward width")->capture_default_str();
  sub->add_option("--vocab-size", o->model.vocab_size, "vocabulary")->capture_default_str();
  sub->add_option("--labels", o->model.num_labels, "classes")->capture_default_str();
  sub->add_option("--seq", o->seq, "sequence length")->capture_default_str();
  sub->add_option("--batch", o->batch, "examples per rank and step")->capture_default_str();
  sub->add_option("--steps", o->steps, "timed steps (train)")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "untimed first steps (train)")->capture_default_str();
  sub->add_option("--examples", o->examples, "examples (precompute, store; data: train rows of the data set)")
      ->capture_default_str();
  sub->add_option("--store-labels", o->store_labels, "logits per row (store)")->capture_default_str();
  sub->add_option("--threads", o->train.threads, "intra-op threads per rank (0 = cores / ranks)")
      ->capture_default_str();
  sub->add_option("--prefetch", o->train.prefetch, "batches made ahead by the loader thread")->capture_default_str();
  sub->add_option("--bucket-mb", o->train.bucket_mb, "gradient bucket size")->capture_default_str();
  // Fixed choices reach the options as config values do (train.reduce, train.precision).
  auto choices = std::make_shared<std::pair<std::string, std::string>>(name(o->train.reduce), name(o->train.precision));
  sub->add_option("--reduce", choices->first, "nonblocking | blocking (train.reduce)")->capture_default_str();
  sub->add_option("--device", o->train.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  sub->add_option("--precision", choices->second, "auto | fp32 | bf16 (train.precision; precompute: the teacher's)")
      ->capture_default_str();
  sub->add_option("--work-dir", o->work_dir, "scratch directory")->capture_default_str();
  sub->add_option("--json", o->json_out, "write the figures to this JSON file");
  return {sub, {}, [o, choices](Communicator& comm) {
            TrainOptions::options().set(o->train, "reduce", choices->first);
            TrainOptions::options().set(o->train, "precision", choices->second);
            cmd_bench(comm, *o);
          }};
}

// Rank 0 reads the run directory and writes the page (app/report.h).
Command add_report(CLI::App& app) {
  struct Args {
    std::string run_dir, out;
    std::vector<std::string> evals;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("report", "one self-contained HTML page of a run directory: plots and tables");
  sub->add_option("run_dir", a->run_dir, "train.out_dir of a run, or the --out directory of distill curve")->required();
  sub->add_option("--eval", a->evals, "distill eval --json output to show too (repeatable; RUN_DIR/eval*.json always)");
  sub->add_option("-o,--out", a->out, "the page (default: RUN_DIR/report.html)");
  return {sub, {}, [a](Communicator& comm) {
            run_on_rank0(comm, [&] { spdlog::info("wrote {}", write_report(a->run_dir, a->evals, a->out)); });
          }};
}

// Inspect reads files only: it runs on every rank without talking to the others.
Command add_inspect(CLI::App& app) {
  struct Args {
    std::string path;
    bool json = false, verify = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("inspect", "summarise a dataset file, a store, a shard or a checkpoint");
  sub->add_option("path", a->path, "path to inspect")->required();
  sub->add_flag("--json", a->json, "print JSON");
  sub->add_flag("--verify", a->verify, "store: also check every shard's digest against manifest.json (reads it all)");
  return {sub, {}, [a](Communicator&) { cmd_inspect(a->path, a->json, a->verify); }};
}

// Every subcommand, in the order --help lists them.
std::vector<Command> add_commands(CLI::App& app) {
  return {add_prepare(app),    add_precompute(app), add_train(app),  add_run(app),     add_eval(app),
          add_curve(app),      add_report(app),     add_mix(app),    add_augment(app), add_export(app),
          add_bench_topk(app), add_bench(app),      add_inspect(app)};
}

// Writes the one error line of this rank: "distill: error on rank R/W (host): message".
void log_error(int rank, int world, const std::string& error) {
  // One write per line, so lines from several ranks do not interleave.
  const std::string line = "distill: error on rank " + std::to_string(rank) + "/" + std::to_string(world) + " (" +
                           host_name() + "): " + error + "\n";
  if (::write(2, line.data(), line.size()) < 0) std::cerr << line;
}

// Runs `command` on every rank (MPI when launched by mpirun, else one local rank) and returns the
// exit code. Note [collectives]: one failing rank ends the whole job, so no rank waits forever.
int run_ranks(const Command& command, int* argc, char*** argv) {
  std::string line = "distill";
  for (int i = 1; i < *argc; ++i) line += std::string(" ") + (*argv)[i];
  const bool use_mpi = launched_by_mpi();
  int rank = 0, world = 1;
  std::string error;
  try {
    std::unique_ptr<Communicator> comm;
    if (use_mpi) {
      record_launcher();  // Note [orphaned ranks]: nothing is committed once mpirun is gone
      mpi_init(argc, argv);
      comm = make_world_communicator();
    } else {
      comm = make_local_communicator();
    }
    rank = comm->rank();
    world = comm->size();
    set_log_rank(rank, world, host_name());
    command.run(*comm);
    comm.reset();
  } catch (const std::bad_alloc&) {
    error = "out of memory (std::bad_alloc) in '" + line +
            "': a size in the config, data set, store or weights is larger than this host's memory";
  } catch (const c10::Error& e) {
    // LibTorch's own message, first line only (without its C++ backtrace).
    std::string m = e.what_without_backtrace();
    m = m.substr(0, m.find('\n'));
    error = m.find("can't allocate memory") != std::string::npos ? "out of memory in '" + line + "': " + m
                                                                 : "LibTorch error in '" + line + "': " + m;
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    log_error(rank, world, error);
    if (use_mpi && world > 1) mpi_abort(1);
  }
  if (use_mpi) mpi_finalize();
  return error.empty() ? 0 : 1;
}

}  // namespace
}  // namespace distill

int main(int argc, char** argv) {
  distill::ensure_passive_openmp(argv);
  distill::keep_large_blocks();
  CLI::App app{"distill: knowledge distillation from BERT-style teachers into small students"};
  app.require_subcommand(1);
  const auto commands = distill::add_commands(app);
  CLI11_PARSE(app, argc, argv);
  for (const auto& c : commands) {
    if (!*c.sub) continue;
    if (c.early)
      if (const int code = c.early(); code != distill::kGoOn) return code;
    return distill::run_ranks(c, &argc, &argv);
  }
  return 0;
}
