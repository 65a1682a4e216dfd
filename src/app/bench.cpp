// distill bench: throughput figures of the real code paths on synthetic data, printed as a table
// (rank 0) and written as JSON. Speeds are measured, never assumed; every ratio compares two
// things measured in the same run.
#include <dlfcn.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "distill/app/commands.h"
#include "distill/app/table.h"
#include "distill/data/split_file.h"
#include "distill/data/synthetic.h"
#include "distill/model/weights.h"
#include "distill/store/manifest.h"
#include "distill/store/reader.h"
#include "distill/store/shard.h"
#include "distill/teacher/precompute.h"
#include "distill/train/trainer.h"
#include "distill/comm/device.h"
#include "distill/model/device.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"
#include "distill/util/log.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// A classification data set of random tokens: every position real (the costliest case).
Dataset random_dataset(std::int64_t n, std::int64_t seq, std::int64_t vocab, std::int64_t labels, std::uint64_t seed) {
  Dataset d;
  d.path = "<bench>";
  d.vocab_size = vocab;
  d.max_length = seq;
  for (std::int64_t i = 0; i < labels; ++i) d.label_names.push_back("l" + std::to_string(i));
  std::mt19937_64 g(seed);
  DataSplit s;
  s.n = n;
  s.seq = seq;
  s.input_ids.resize(n * seq);
  s.attention_mask.assign(n * seq, 1);
  s.token_type_ids.assign(n * seq, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    s.input_ids[i * seq] = 101;
    for (std::int64_t t = 1; t < seq; ++t)
      s.input_ids[i * seq + t] = static_cast<std::int32_t>(1000 + g() % (vocab - 1000));
    s.labels.push_back(static_cast<std::int64_t>(g() % labels));
    s.example_id.push_back(i);
  }
  d.splits["train"] = std::move(s);
  d.content_hash = dataset_content_hash(d);
  return d;
}

// Rank 0 writes a float16 logits store of random values for `d`'s train split; returns its bytes.
std::int64_t write_random_store(Communicator& comm, const std::string& dir, const Dataset& d, std::int64_t shard_size) {
  const auto& s = d.split("train");
  StoreMeta meta;
  meta.teacher_fingerprint = "bench";
  meta.dataset_hash = d.content_hash;
  meta.split = "train";
  meta.dtype = "float16";
  meta.num_labels = d.num_labels();
  meta.num_examples = s.n;
  meta.shard_size = shard_size;
  std::int64_t bytes = 0;
  if (comm.rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    Manifest m;
    m.meta = meta;
    for (const auto& r : shard_ranges(s.n, shard_size)) {
      auto z = torch::randn({r.end - r.begin, meta.num_labels}).to(torch::kHalf).contiguous();
      std::vector<std::int64_t> rows;
      for (auto i = r.begin; i < r.end; ++i) rows.push_back(i);
      auto path = write_shard(dir, meta, r, z.data_ptr(), s.select(rows).example_id, 0);
      m.shards.push_back({shard_name(r), r, static_cast<std::int64_t>(fs::file_size(path)), file_digest(path)});
      bytes += m.shards.back().bytes;
    }
    write_manifest(dir, m);
  }
  comm.barrier();
  return bytes;
}

// Matrix-product rate of this rank in `dtype` (FLOP/s, median of timed products), all ranks at
// once so that they share the node as they do in training.
double matmul_peak(Communicator& comm, const c10::Device& d, c10::ScalarType dtype) {
  const std::int64_t n = d.is_cuda() ? 8192 : 2048;
  auto opts = torch::TensorOptions().device(d).dtype(dtype);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  std::vector<double> t;
  comm.barrier();
  for (int i = 0; i < (d.is_cuda() ? 20 : 6); ++i) {
    synchronize(d);
    const auto t0 = Clock::now();
    auto c = torch::matmul(a, b);
    synchronize(d);
    if (i >= 2) t.push_back(since(t0));
  }
  return 2.0 * n * n * n / median(t);
}

// Model FLOPs of one training example (forward + backward = 3 forwards) of a BERT classifier:
// the matrix products only (embeddings are lookups).
double bert_train_flops(const ModelConfig& c, std::int64_t seq) {
  const double h = static_cast<double>(c.hidden), i = static_cast<double>(c.intermediate), s = static_cast<double>(seq);
  const double layer = 2 * s * (4 * h * h + 2 * h * i) + 2 * 2 * s * s * h;
  return 3 * (static_cast<double>(c.layers) * layer + 2 * h * h + 2 * h * static_cast<double>(c.num_labels));
}

std::string fmt_num(double v, int digits = 1) { return fmt::format("{:.{}f}", v, digits); }

// The bench student's job on `data` and `store`: o.warmup untimed steps, then o.steps timed ones,
// with phase timings; checkpoints under `dir`/student.
TrainJob bench_job(const BenchOptions& o, const Dataset& data, const StoreReader& store, const std::string& dir) {
  TrainJob job;
  job.data = &data;
  job.eval_split = "none";
  job.store = &store;
  job.model = o.model;
  job.kd.alpha = 0.5;
  job.kd.beta = 0.5;
  job.kd.temperature = 2;
  job.opt = o.train;  // threads, prefetch, bucket_mb, reduce, device, precision
  job.opt.out_dir = dir + "/student";
  job.opt.batch_size = o.batch;
  job.opt.max_steps = o.warmup + o.steps;
  job.opt.lr = 1e-4;
  job.opt.warmup_steps = 1;
  job.opt.log_every = 1000000;
  job.opt.keep_checkpoints = 1;
  job.untimed_steps = o.warmup;
  job.profile = true;
  job.config_hash = "bench";
  return job;
}

// The figures of a bench run `r` on `world` ranks against the ranks' mean matmul peak.
nlohmann::json train_figures(const BenchOptions& o, const TrainResult& r, int world, double per_rank_peak, Table& t) {
  const auto& p = r.profile;
  const double step_s = p.seconds / std::max<std::int64_t>(1, p.steps);
  const double samples = static_cast<double>(o.batch * world) / step_s;
  const double flops = bert_train_flops(o.model, o.seq) * samples;
  nlohmann::json j = {{"ranks", world},
                      {"device", r.device},
                      {"precision", r.precision},
                      {"precision_requested", name(o.train.precision)},
                      {"threads_per_rank", at::get_num_threads()},
                      {"parameters", r.parameters},
                      {"batch_per_rank", o.batch},
                      {"seq", o.seq},
                      {"timed_steps", p.steps},
                      {"step_ms", 1e3 * step_s},
                      {"steps_per_s", 1.0 / step_s},
                      {"samples_per_s", samples},
                      {"tokens_per_s", samples * static_cast<double>(o.seq)},
                      {"model_flops_per_s", flops},
                      {"matmul_peak_flops_per_s_per_rank", per_rank_peak},
                      {"model_flops_share_of_peak", flops / world / per_rank_peak},
                      {"exposed_comm_share", p.comm_wait / p.seconds},
                      {"input_wait_share", p.input_wait / p.seconds}};
  t.rows = {{"train", "value"},
            {"ranks x threads", fmt::format("{} x {} ({})", world, at::get_num_threads(), r.device)},
            {"precision", fmt::format("{} ({})", r.precision, name(o.train.precision))},
            {"parameters", std::to_string(r.parameters)},
            {"step (ms)", fmt_num(1e3 * step_s)},
            {"steps/s", fmt_num(1.0 / step_s, 2)},
            {"samples/s", fmt_num(samples)},
            {"tokens/s", fmt_num(samples * static_cast<double>(o.seq), 0)},
            {"model GFLOP/s", fmt_num(flops / 1e9)},
            {"matmul peak GFLOP/s per rank (" + r.precision + ")", fmt_num(per_rank_peak / 1e9)},
            {"model FLOP/s / peak", fmt_num(100 * flops / world / per_rank_peak) + "%"},
            {"exposed communication", fmt_num(100 * p.comm_wait / p.seconds) + "%"},
            {"input wait", fmt_num(100 * p.input_wait / p.seconds, 2) + "%"}};
  const std::pair<const char*, double> phases[] = {{"input", p.phases.input},
                                                   {"forward", p.phases.forward},
                                                   {"backward", p.phases.backward},
                                                   {"reduce", p.phases.reduce},
                                                   {"optimizer", p.phases.optimizer}};
  for (const auto& [name, seconds] : phases) {
    const double ms = 1e3 * seconds / std::max<std::int64_t>(1, p.steps);
    j["phase_ms"][name] = ms;
    t.rows.push_back({std::string("  ") + name + " (ms)", fmt_num(ms)});
  }
  return j;
}

nlohmann::json bench_train(Communicator& comm, const BenchOptions& o, Table& t) {
  const int world = comm.size();
  const auto device = resolve_device(o.train.device, comm.local_rank(), "--device");
  const std::int64_t steps_per_epoch = 8;
  auto data = random_dataset(o.batch * world * steps_per_epoch, o.seq, o.model.vocab_size, o.model.num_labels, 1);
  const std::string dir = (fs::path(o.work_dir) / "train").string();
  write_random_store(comm, dir + "/store", data, 64);
  StoreMeta expect;
  expect.dataset_hash = data.content_hash;
  expect.split = "train";
  expect.num_labels = o.model.num_labels;
  expect.num_examples = data.split("train").n;
  StoreReader store(dir + "/store", expect);
  const TrainJob job = bench_job(o, data, store, dir);
  if (comm.rank() == 0) fs::remove_all(job.opt.out_dir);
  comm.barrier();
  auto r = train(comm, job);
  // The peak of the precision the steps ran in.
  const double peak = matmul_peak(comm, device, train_precision(o.train, device, false));
  // Rank 0's step time stands for the job (ranks step together); the peak is the ranks' mean.
  double per_rank_peak = peak;
  comm.allreduce(&per_rank_peak, 1, DType::kFloat64, ReduceOp::kAverage);
  return train_figures(o, r, world, per_rank_peak, t);
}

nlohmann::json bench_precompute(Communicator& comm, const BenchOptions& o, Table& t) {
  const std::string dir = (fs::path(o.work_dir) / "precompute").string();
  auto data = random_dataset(o.examples, o.seq, o.model.vocab_size, o.model.num_labels, 2);
  TeacherOptions topt;
  topt.path = dir + "/teacher.safetensors";
  topt.batch_size = o.batch * 4;
  topt.device = o.train.device;
  topt.precision = o.train.precision;
  if (comm.rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    torch::manual_seed(3);
    auto m = make_network(o.model);
    save_model_file(topt.path, *m, o.model);
  }
  comm.barrier();
  StoreOptions sopt;
  sopt.path = dir + "/store";
  sopt.shard_size = 256;
  const auto teacher = load_teacher(topt, comm);
  auto r = precompute(comm, data, "train", teacher, topt, sopt);
  const double eps = static_cast<double>(r.examples_computed) / r.seconds;
  nlohmann::json j = {{"ranks", comm.size()},
                      {"examples", r.examples_computed},
                      {"seconds", r.seconds},
                      {"examples_per_s", eps},
                      {"write_seconds_rank0", r.write_seconds},
                      {"write_share", r.write_seconds / r.seconds},
                      {"write_wait_share", r.write_wait_seconds / r.seconds},
                      {"store_bytes", r.store_bytes},
                      {"precision", r.teacher_precision},
                      {"precision_requested", name(o.train.precision)}};
  t.rows = {{"precompute", "value"},
            {"precision", fmt::format("{} ({})", r.teacher_precision, name(o.train.precision))},
            {"teacher examples/s", fmt_num(eps)},
            {"time writing the store (writer thread)", fmt_num(100 * r.write_seconds / r.seconds) + "%"},
            {"teacher waiting for the writer", fmt_num(100 * r.write_wait_seconds / r.seconds, 2) + "%"},
            {"store bytes", std::to_string(r.store_bytes)}};
  if (r.check_rows > 0) {
    j["check"] = {{"rows", r.check_rows},
                  {"top1_match", r.check_top1},
                  {"kl", r.check_kl},
                  {"max_abs_difference", r.check_max_abs}};
    t.rows.push_back(
        {"top-1 match with fp32 (" + std::to_string(r.check_rows) + " examples)", fmt_num(r.check_top1, 4)});
    t.rows.push_back({"mean KL(fp32 || " + r.teacher_precision + ")", fmt::format("{:.3g}", r.check_kl)});
  }
  return j;
}

nlohmann::json bench_allreduce(Communicator& comm, const BenchOptions& o, Table& t) {
  const auto device = resolve_device(o.train.device, comm.local_rank(), "--device");
  auto device_comm = make_device_communicator(comm, device, 600);
  Communicator& c = device_comm ? *device_comm : comm;
  const int n = comm.size();
  nlohmann::json rows = nlohmann::json::array();
  t.rows = {{"bytes", "time (us)", "algbw (GB/s)", "busbw (GB/s)"}};
  for (std::int64_t bytes = 4 << 10; bytes <= (std::int64_t{64} << 20); bytes *= 2) {
    auto buf = torch::randn({bytes / 4}, torch::TensorOptions().device(device));
    const int iters = static_cast<int>(std::clamp<std::int64_t>((std::int64_t{256} << 20) / bytes, 5, 200));
    std::vector<double> times;
    for (int i = 0; i < iters + 3; ++i) {
      comm.barrier();
      const auto t0 = Clock::now();
      c.allreduce(buf.data_ptr<float>(), static_cast<std::size_t>(buf.numel()), DType::kFloat32, ReduceOp::kSum);
      synchronize(device);
      if (i >= 3) times.push_back(since(t0));
    }
    double tm = median(times);
    comm.allreduce(&tm, 1, DType::kFloat64, ReduceOp::kMax);
    const double alg = static_cast<double>(bytes) / tm / 1e9, bus = alg * 2.0 * (n - 1) / n;
    rows.push_back({{"bytes", bytes}, {"seconds", tm}, {"algbw_GBps", alg}, {"busbw_GBps", bus}});
    t.rows.push_back({std::to_string(bytes), fmt_num(tm * 1e6), fmt_num(alg, 3), fmt_num(bus, 3)});
  }
  return {{"ranks", n}, {"device", device.str()}, {"sizes", rows}};
}

// Plain-file reference: the same bytes written with write() + fsync, and read back.
std::pair<double, double> plain_file_rates(const std::string& path, std::int64_t bytes) {
  std::vector<char> buf(static_cast<std::size_t>(bytes), 'x');
  auto t0 = Clock::now();
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    DISTILL_CHECK(f, StoreError, "cannot write ", path);
    std::fwrite(buf.data(), 1, buf.size(), f);
    std::fflush(f);
    fsync(fileno(f));
    std::fclose(f);
  }
  const double w = since(t0);
  t0 = Clock::now();
  std::ifstream in(path, std::ios::binary);
  in.read(buf.data(), bytes);
  const double r = since(t0);
  return {bytes / w / 1e6, bytes / r / 1e6};
}

nlohmann::json bench_store(Communicator& comm, const BenchOptions& o, Table& t) {
  const std::string dir = (fs::path(o.work_dir) / "store").string();
  auto data = random_dataset(o.examples, 8, 2000, o.store_labels, 4);
  auto t0 = Clock::now();
  const auto bytes = write_random_store(comm, dir + "/store", data, 1024);
  const double write_s = since(t0);
  StoreMeta expect;
  expect.dataset_hash = data.content_hash;
  expect.split = "train";
  expect.num_labels = o.store_labels;
  expect.num_examples = o.examples;
  t0 = Clock::now();
  StoreReader reader(dir + "/store", expect);
  const double read_s = since(t0);
  // write_random_store also draws the random logits: time that part alone and take it out.
  t0 = Clock::now();
  for (const auto& r : shard_ranges(o.examples, 1024))
    (void)torch::randn({r.end - r.begin, o.store_labels}).to(torch::kHalf).contiguous();
  const double gen_s = since(t0);
  auto [plain_w, plain_r] = plain_file_rates(dir + "/plain.bin", bytes);
  const double w = bytes / std::max(1e-9, write_s - gen_s) / 1e6, r = bytes / read_s / 1e6;
  t.rows = {{"store (rank 0)", "store MB/s", "plain file MB/s", "store / plain"},
            {"write (fsync)", fmt_num(w), fmt_num(plain_w), fmt_num(w / plain_w, 2)},
            {"read", fmt_num(r), fmt_num(plain_r), fmt_num(r / plain_r, 2)}};
  return {{"bytes", bytes}, {"examples", o.examples},      {"labels", o.store_labels},  {"write_MBps", w},
          {"read_MBps", r}, {"plain_write_MBps", plain_w}, {"plain_read_MBps", plain_r}};
}

// This process's resident set (VmRSS) or its peak (VmHWM), in bytes.
double proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return 1024.0 * std::stod(line.substr(std::strlen(key) + 1));
  return 0;
}

// Training from a dataset.h5 of o.examples synthetic train rows (made once under --work-dir, in
// bounded memory) and a float16 logits store: peak RSS per rank from opening the data set to the
// last step, time to the first step, and the input wait (Note [lazy rows]).
nlohmann::json bench_data(Communicator& comm, const BenchOptions& o, Table& t) {
  const std::string dir = (fs::path(o.work_dir) / fmt::format("data-{}-{}", o.examples, o.seq)).string();
  const std::string path = dir + "/dataset.h5";
  double make_s = 0;
  if (comm.rank() == 0 && !fs::exists(path)) {
    fs::create_directories(dir);
    SyntheticOptions so;
    so.train = o.examples;
    so.dev = so.test = 1000;
    so.seq = o.seq;
    so.vocab_size = o.model.vocab_size;
    so.num_labels = o.model.num_labels;
    const auto t0 = Clock::now();
    write_synthetic(path, so);
    make_s = since(t0);
  }
  comm.barrier();
  const std::string store_dir = dir + "/store";
  // Rank 0 decides, so that every rank calls write_random_store (a collective) or none does.
  std::string have = comm.rank() == 0 && fs::exists(store_dir + "/manifest.json") ? "yes" : "no";
  comm.broadcast_string(have, 0);
  if (have == "no") write_random_store(comm, store_dir, read_dataset(path), 16384);
  comm.barrier();
  // The peak is counted from here: VmHWM restarts at the current RSS (Linux clear_refs 5).
  std::ofstream("/proc/self/clear_refs") << "5";
  const double rss0 = proc_status_bytes("VmRSS:");
  const auto t0 = Clock::now();
  const Dataset data = read_dataset(path);
  StoreMeta expect;
  expect.dataset_hash = data.content_hash;
  expect.split = "train";
  expect.num_labels = o.model.num_labels;
  expect.num_examples = data.split("train").n;
  StoreReader store(store_dir, expect);
  const double open_s = since(t0);
  TrainJob job = bench_job(o, data, store, dir);
  if (comm.rank() == 0) fs::remove_all(job.opt.out_dir);
  comm.barrier();
  const auto r = train(comm, job);
  double figures[4] = {proc_status_bytes("VmHWM:"), rss0, open_s + r.first_step_seconds,
                       open_s + r.first_batch_seconds};
  comm.allreduce(figures, 4, DType::kFloat64, ReduceOp::kMax);
  const auto& p = r.profile;
  const double step_s = p.seconds / std::max<std::int64_t>(1, p.steps);
  const double samples = static_cast<double>(o.batch * comm.size()) / step_s;
  const auto rows_read = data.split("train").file->rows_read();
  const auto file_bytes = static_cast<double>(fs::file_size(path));
  t.rows = {{"data", "value"},
            {"train examples", std::to_string(o.examples)},
            {"dataset.h5 (GB)", fmt_num(file_bytes / 1e9, 2)},
            {"ranks x threads", fmt::format("{} x {}", comm.size(), at::get_num_threads())},
            {"RSS before opening, max over ranks (MB)", fmt_num(figures[1] / 1e6)},
            {"peak RSS per rank, max over ranks (MB)", fmt_num(figures[0] / 1e6)},
            {"time to the first step's start: batch in hand (s)", fmt_num(figures[3], 2)},
            {"time to the first step's end (s)", fmt_num(figures[2], 2)},
            {"  of which opening data set and store (s)", fmt_num(open_s, 2)},
            {"train rows read by rank 0", std::to_string(rows_read)},
            {"samples/s", fmt_num(samples)},
            {"input wait", fmt_num(100 * p.input_wait / std::max(1e-9, p.seconds), 2) + "%"}};
  if (make_s > 0) t.rows.push_back({"making the data set (s, once)", fmt_num(make_s)});
  return {{"examples", o.examples},
          {"seq", o.seq},
          {"ranks", comm.size()},
          {"file_bytes", file_bytes},
          {"rss_before_bytes", figures[1]},
          {"peak_rss_bytes", figures[0]},
          {"first_step_seconds", figures[2]},
          {"first_batch_seconds", figures[3]},
          {"open_seconds", open_s},
          {"rows_read_rank0", rows_read},
          {"timed_steps", p.steps},
          {"samples_per_s", samples},
          {"input_wait_share", p.input_wait / std::max(1e-9, p.seconds)}};
}

}  // namespace

void cmd_bench(Communicator& comm, const BenchOptions& o) {
  const auto cpus = gather_rank_cpus(comm);
  const int threads =
      size_threads(static_cast<int>(o.train.threads), ranks_sharing_cpus(cpus, comm.rank()), "--threads");
  const auto check = check_threads(cpus, comm.rank());
  const auto& isa = cpu_isa();
  if (comm.rank() == 0) spdlog::info("bench {}: {}; CPU: {}", o.what, check.summary, isa.describe());
  fs::create_directories(o.work_dir);
  Table table;
  nlohmann::json j;
  if (o.what == "train")
    j = bench_train(comm, o, table);
  else if (o.what == "precompute")
    j = bench_precompute(comm, o, table);
  else if (o.what == "allreduce")
    j = bench_allreduce(comm, o, table);
  else if (o.what == "store")
    j = bench_store(comm, o, table);
  else if (o.what == "data")
    j = bench_data(comm, o, table);
  else
    throw ConfigError(str("bench '", o.what, "': expected train, precompute, allreduce, store or data"));
  j["bench"] = o.what;
  j["cpu"] = {{"model", isa.model}, {"bf16_units", isa.units()}, {"cap", isa.cap}};
  j["threads"] = {{"intra_op_per_rank", threads},
                  {"ranks_on_node", comm.local_size()},
                  {"cores", check.cores},
                  {"blas_per_rank", check.blas},
                  {"ok", check.ok}};
  if (comm.rank() != 0) return;
  std::cout << "CPU: " << isa.describe() << "\n";
  table.print();
  if (!o.json_out.empty()) {
    write_file_atomic(o.json_out, j.dump(2) + "\n");
    spdlog::info("wrote {}", o.json_out);
  }
}

}  // namespace distill
