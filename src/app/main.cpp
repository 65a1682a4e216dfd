// distill: prepare, precompute, train, run, eval, export, bench, inspect. Launched directly or under mpirun.
#include <CLI/CLI.hpp>

#include <c10/util/Exception.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "distill/app/commands.h"
#include "distill/comm/mpi.h"
#include "distill/util/error.h"
#include "distill/util/lock.h"
#include "distill/util/log.h"

namespace {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"})
    if (std::getenv(v)) return true;
  return false;
}

void add_run_args(CLI::App* sub, distill::RunArgs& a) {
  sub->add_option("-c,--config", a.config_path, "run config (YAML)")->check(CLI::ExistingFile);
  sub->add_option("--set", a.overrides, "override a config field: section.key=value (repeatable)");
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

}  // namespace

int main(int argc, char** argv) {
  ensure_passive_openmp(argv);
  keep_large_blocks();
  using namespace distill;
  CLI::App app{"distill: knowledge distillation from BERT-style teachers into small students"};
  app.require_subcommand(1);

  RunArgs run;
  bool resume = false, json = false;
  std::string checkpoint, split, out, inspect_path;
  SyntheticOptions syn;
  bool synthetic = false;

  PrepareOptions text;
  auto* prepare = app.add_subcommand("prepare", "write a dataset.h5 from a CSV/TSV/JSONL table, or a synthetic task");
  prepare->add_option("-o,--out", out, "output dataset.h5")->required();
  auto* in = prepare->add_option("-i,--input", text.input, "table of examples (.csv, .tsv, .jsonl; .h5 with --features)")
                 ->check(CLI::ExistingFile)->group("Text");
  prepare->add_option("--format", text.format, "csv | tsv | jsonl (default: from the extension)")->group("Text");
  prepare->add_option("--columns", text.column_names, "column names of a CSV/TSV file without a header row")
      ->delimiter(',')->group("Text");
  prepare->add_option("--text-column", text.text_column, "column of the text")->capture_default_str()->group("Text");
  prepare->add_option("--pair-column", text.pair_column, "column of the second segment (pairs)")->group("Text");
  prepare->add_option("--label-column", text.label_column, "column of the label")->capture_default_str()->group("Text");
  prepare->add_option("--labels", text.labels, "label values in class order (default: sorted distinct values)")
      ->delimiter(',')->group("Text");
  prepare->add_option("--label-names", text.label_names, "names stored for the classes, one per --labels value")
      ->delimiter(',')->group("Text");
  prepare->add_option("--vocab", text.vocab, "WordPiece vocab.txt")->check(CLI::ExistingFile)->group("Text");
  prepare->add_flag("--cased", text.cased, "keep case and accents (cased vocabularies)")->group("Text");
  prepare->add_option("--max-length", text.max_length, "padded length with [CLS]/[SEP]; longer texts are truncated")
      ->capture_default_str()->group("Text");
  prepare->add_option("--dev-fraction", text.dev_fraction, "share of rows for dev")->capture_default_str()->group("Text");
  prepare->add_option("--test-fraction", text.test_fraction, "share of rows for test")->capture_default_str()->group("Text");
  prepare->add_option("--split-seed", text.seed, "seed of the train/dev/test split")->capture_default_str()->group("Text");
  prepare->add_flag("--skip-bad-rows", text.skip_bad_rows, "count and skip bad rows instead of stopping at the first")
      ->group("Text");
  prepare->add_flag("--mlm", text.mlm, "masked-LM examples from the text column (no labels)")->group("Masked LM");
  prepare->add_option("--mask-prob", text.mask_prob, "share of tokens masked")->capture_default_str()->group("Masked LM");
  prepare->add_flag("--features", text.features, "feature vectors from a CSV of numbers or an HDF5 file "
                    "(features, labels)")->group("Features");
  prepare->add_option("--label-index", text.label_index, "CSV column of the label (negative: from the end)")
      ->capture_default_str()->group("Features");
  prepare->add_flag("--standardize", text.standardize, "z-score features with the train split's mean and std")
      ->group("Features");
  auto* syn_flag = prepare->add_flag("--synthetic", synthetic, "generate the synthetic marker-counting task")
                       ->group("Synthetic");
  syn_flag->excludes(in);
  prepare->add_option("--train", syn.train, "train examples")->capture_default_str()->group("Synthetic");
  prepare->add_option("--dev", syn.dev, "dev examples")->capture_default_str()->group("Synthetic");
  prepare->add_option("--test", syn.test, "test examples")->capture_default_str()->group("Synthetic");
  prepare->add_option("--vocab-size", syn.vocab_size, "vocabulary size")->capture_default_str()->group("Synthetic");
  prepare->add_option("--seq", syn.seq, "padded sequence length")->capture_default_str()->group("Synthetic");
  prepare->add_option("--num-labels", syn.num_labels, "number of classes")->capture_default_str()->group("Synthetic");
  prepare->add_option("--noise", syn.noise, "share of labels redrawn at random")->capture_default_str()->group("Synthetic");
  prepare->add_option("--seed", syn.seed, "generator seed")->capture_default_str()->group("Synthetic");

  auto* pre = app.add_subcommand("precompute", "teacher ranks write soft targets into the store");
  add_run_args(pre, run);
  auto* train = app.add_subcommand("train", "student ranks train (on the store's targets when store.path is set)");
  add_run_args(train, run);
  train->add_flag("--resume", resume, "continue from train.out_dir/checkpoints/latest");
  long teacher_ranks = 0;
  auto* runc = app.add_subcommand("run", "streaming: teacher ranks precompute while the other ranks train on each "
                                  "committed shard");
  add_run_args(runc, run);
  runc->add_option("--teacher-ranks", teacher_ranks, "ranks that run the teacher (default: teacher.ranks)");
  auto* ev = app.add_subcommand("eval", "accuracy, teacher agreement, transfer risk and KL on a held-out split");
  add_run_args(ev, run);
  ev->add_option("--checkpoint", checkpoint, "student checkpoint (default: train.out_dir/checkpoints)");
  ev->add_option("--split", split, "split to evaluate (default: data.test_split)");
  ev->add_flag("--json", json, "print JSON");
  std::string vocab;
  auto* exp = app.add_subcommand("export", "write a student as a Hugging Face BertForSequenceClassification directory");
  add_run_args(exp, run);
  exp->add_option("--checkpoint", checkpoint, "checkpoint to export (default: train.out_dir/checkpoints)");
  exp->add_option("-o,--out", out, "output directory")->required();
  exp->add_option("--vocab", vocab, "vocab.txt to copy into the directory")->check(CLI::ExistingFile);
  std::vector<long> ks = {8, 16, 32, 64, 128};
  auto* bench = app.add_subcommand("bench-topk", "masked LM: bytes per token and top-k vs dense loss gap for several k");
  add_run_args(bench, run);
  bench->add_option("--split", split, "split to measure on (default: data.eval_split)");
  bench->add_option("--k", ks, "values of k")->delimiter(',')->capture_default_str();
  bench->add_flag("--json", json, "print JSON");
  BenchOptions bo;
  auto* benchc = app.add_subcommand("bench", "throughput on synthetic data: train, precompute, allreduce or store");
  benchc->add_option("what", bo.what, "train | precompute | allreduce | store")->required()
      ->check(CLI::IsMember({"train", "precompute", "allreduce", "store"}));
  benchc->add_option("--hidden", bo.model.hidden, "model width")->capture_default_str();
  benchc->add_option("--layers", bo.model.layers, "encoder blocks")->capture_default_str();
  benchc->add_option("--heads", bo.model.heads, "attention heads")->capture_default_str();
  benchc->add_option("--intermediate", bo.model.intermediate, "feed-forward width")->capture_default_str();
  benchc->add_option("--vocab-size", bo.model.vocab_size, "vocabulary")->capture_default_str();
  benchc->add_option("--labels", bo.model.num_labels, "classes")->capture_default_str();
  benchc->add_option("--seq", bo.seq, "sequence length")->capture_default_str();
  benchc->add_option("--batch", bo.batch, "examples per rank and step")->capture_default_str();
  benchc->add_option("--steps", bo.steps, "timed steps (train)")->capture_default_str();
  benchc->add_option("--warmup", bo.warmup, "untimed first steps (train)")->capture_default_str();
  benchc->add_option("--examples", bo.examples, "examples (precompute, store)")->capture_default_str();
  benchc->add_option("--store-labels", bo.store_labels, "logits per row (store)")->capture_default_str();
  benchc->add_option("--threads", bo.threads, "intra-op threads per rank (0 = cores / ranks)")->capture_default_str();
  benchc->add_option("--prefetch", bo.prefetch, "batches made ahead by the loader thread")->capture_default_str();
  benchc->add_option("--bucket-mb", bo.bucket_mb, "gradient bucket size")->capture_default_str();
  benchc->add_option("--reduce", bo.reduce, "nonblocking | blocking (train.reduce)")->capture_default_str();
  benchc->add_option("--device", bo.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  benchc->add_option("--precision", bo.precision, "fp32 | bf16")->capture_default_str();
  benchc->add_option("--work-dir", bo.work_dir, "scratch directory")->capture_default_str();
  benchc->add_option("--json", bo.json_out, "write the figures to this JSON file");
  auto* insp = app.add_subcommand("inspect", "summarise a dataset file, a store, a shard or a checkpoint");
  insp->add_option("path", inspect_path, "path to inspect")->required();
  insp->add_flag("--json", json, "print JSON");
  bool verify = false;
  insp->add_flag("--verify", verify, "store: also check every shard's digest against manifest.json (reads it all)");

  CLI11_PARSE(app, argc, argv);
  if (*prepare && !synthetic && text.input.empty()) {
    std::cerr << "prepare: give --input TABLE (with --vocab) or --synthetic\n";
    return 2;
  }

  std::string command = "distill";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  const bool use_mpi = launched_by_mpi();
  int rank = 0, world = 1;
  std::string error;
  try {
    std::unique_ptr<Communicator> comm;
    if (use_mpi) {
      record_launcher();  // Note [orphaned ranks]: nothing is committed once mpirun is gone
      mpi_init(&argc, &argv);
      comm = make_world_communicator();
    } else {
      comm = make_local_communicator();
    }
    rank = comm->rank();
    world = comm->size();
    set_log_rank(rank, world, host_name());
    if (*prepare && synthetic) cmd_prepare_synthetic(*comm, syn, out);
    else if (*prepare) cmd_prepare_text(*comm, text, out);  // text, masked LM or features
    else if (*pre) cmd_precompute(*comm, run);
    else if (*train) cmd_train(*comm, run, resume);
    else if (*runc) cmd_run(*comm, run, teacher_ranks);
    else if (*ev) cmd_eval(*comm, run, checkpoint, split, json);
    else if (*insp) cmd_inspect(inspect_path, json, verify);
    else if (*exp) cmd_export(*comm, run, checkpoint, out, vocab);
    else if (*bench) cmd_bench_topk(*comm, run, split, ks, json);
    else if (*benchc) cmd_bench(*comm, bo);
    comm.reset();
  } catch (const std::bad_alloc&) {
    error = "out of memory (std::bad_alloc) in '" + command +
            "': a size in the config, data set, store or weights is larger than this host's memory";
  } catch (const c10::Error& e) {
    // LibTorch's own message, first line only (without its C++ backtrace).
    std::string m = e.what_without_backtrace();
    m = m.substr(0, m.find('\n'));
    error = m.find("can't allocate memory") != std::string::npos
                ? "out of memory in '" + command + "': " + m
                : "LibTorch error in '" + command + "': " + m;
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    // Note [collectives]: one failing rank ends the whole job, so no rank waits forever.
    // One write per line, so lines from several ranks do not interleave.
    const std::string line = "distill: error on rank " + std::to_string(rank) + "/" + std::to_string(world) + " (" +
                             host_name() + "): " + error + "\n";
    if (::write(2, line.data(), line.size()) < 0) std::cerr << line;
    if (use_mpi && world > 1) mpi_abort(1);
    if (use_mpi) mpi_finalize();
    return 1;
  }
  if (use_mpi) mpi_finalize();
  return 0;
}
