#include "distill/teacher/precompute.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <fstream>
#include <map>
#include <thread>
#include <nlohmann/json.hpp>

#include "distill/kd/layer_map.h"
#include "distill/model/load.h"
#include "distill/store/manifest.h"
#include "distill/store/shard.h"
#include "distill/store/verify.h"
#include "distill/data/batch.h"
#include "distill/util/error.h"
#include "distill/model/device.h"
#include "distill/util/hash.h"
#include "distill/util/progress.h"

namespace distill {

namespace fs = std::filesystem;

LoadedTeacher load_teacher(const std::string& path) {
  LoadedTeacher t;
  if (is_torchscript_path(path)) {
    DISTILL_CHECK(fs::is_regular_file(path), DataError, "TorchScript teacher ", path, " does not exist");
    t.model = load_torchscript_teacher(path);
    t.file = path;
    t.fingerprint = model_fingerprint(path);
  } else {
    auto m = load_model(path);
    t.model = make_network_teacher(m.model);
    t.file = m.file;
    t.fingerprint = m.fingerprint;
  }
  return t;
}

LoadedTeacher load_teacher(const TeacherOptions& o, const Communicator& comm) {
  auto t = load_teacher(o.path);
  const auto d = resolve_device(o.device, comm.local_rank(), "teacher.device");
  auto precision = parse_precision(o.precision, "teacher.precision");
  if (!d.is_cuda() && precision != c10::ScalarType::Float) {
    DISTILL_CHECK(o.device == "auto", ConfigError, "teacher.precision: ", o.precision, " needs a GPU; teacher.device is ",
                  o.device);
    if (comm.rank() == 0) spdlog::warn("teacher.precision: {} applies on GPUs only; the CPU runs fp32", o.precision);
    precision = c10::ScalarType::Float;
  }
  t.model->place(d, precision);
  t.device = d;
  if (comm.rank() == 0 && d.is_cuda()) spdlog::info("teacher on {} ({})", d.str(), precision_name(precision));
  return t;
}

std::string teacher_fingerprint(const std::string& path) { return model_fingerprint(path); }

namespace {

// Test hook: DISTILL_FAULT_KILL_AFTER_SHARDS=n makes rank 0 leave a partial shard and die with
// SIGKILL after committing n shards.
void maybe_fault(int rank, std::int64_t committed, const std::string& partial_path) {
  const char* v = std::getenv("DISTILL_FAULT_KILL_AFTER_SHARDS");
  if (!v || rank != 0 || std::atoll(v) != committed) return;
  std::ofstream(partial_path, std::ios::binary) << "partial shard";
  std::raise(SIGKILL);
}

// Returns true when a committed shard for `r` exists, reads back with `meta` and, when the store's
// previous manifest lists it with a digest, still has that digest (Note [verified stores]).
// `digest` receives the file's digest when it was computed.
bool shard_is_committed(const std::string& dir, const StoreMeta& meta, const ShardRange& r, const ShardEntry* listed,
                        std::string& digest) {
  const auto path = (fs::path(dir) / shard_name(r)).string();
  if (!fs::exists(path)) return false;
  try {
    read_shard(path, meta, r);
    if (listed && !listed->digest.empty()) {
      verify_shard_digest(dir, *listed);
      digest = listed->digest;
    }
    return true;
  } catch (const StoreError& e) {
    spdlog::warn("redoing {}: {}", path, e.what());
    return false;
  }
}

// The manifest entry of a committed shard; `digest` = "" computes it.
nlohmann::json shard_entry(const ShardRange& r, const std::string& path, const std::string& digest = "") {
  return {{"file", shard_name(r)}, {"begin", r.begin}, {"end", r.end},
          {"bytes", static_cast<std::int64_t>(fs::file_size(path))},
          {"digest", digest.empty() ? file_digest(path) : digest}};
}

// Refuses committed shards in `dir` that hold this run's targets (teacher, data, split, layout) but
// were computed with another teacher.batch_size (Note [verified stores]: one store, one batch
// size). Returns how many such shards do not record a batch size (written by an older distill).
std::int64_t check_shard_batch_sizes(const std::string& dir, const StoreMeta& meta) {
  StoreMeta any = meta;
  any.teacher_batch_size = 0;
  std::int64_t unrecorded = 0;
  for (const auto& f : fs::directory_iterator(dir)) {
    const auto name = f.path().filename().string();
    ShardRange r;
    if (!parse_shard_name(name, &r)) continue;
    StoreMeta have;
    try {
      have = read_shard_meta(f.path().string()).first;
      check_store_meta(have, any, name);
      if (layout_json(have) != layout_json(meta) || have.dtype != meta.dtype || have.shard_size != meta.shard_size)
        continue;
    } catch (const StoreError&) {
      continue;  // unreadable or another run's shard: redone
    }
    unrecorded += have.teacher_batch_size == 0;
    DISTILL_CHECK(have.teacher_batch_size == 0 || have.teacher_batch_size == meta.teacher_batch_size, StoreError,
                  "store ", dir, ": shard ", name, " was computed with teacher.batch_size ", have.teacher_batch_size,
                  ", this precompute uses ", meta.teacher_batch_size, " (float16 targets can differ between batch "
                  "sizes, so a store holds one); set teacher.batch_size: ", have.teacher_batch_size,
                  " to resume this store, or precompute into a new store.path");
  }
  return unrecorded;
}

// Up to `max` rows (first dimension) of `t` that hold a NaN or an infinity, and how many do.
std::pair<std::vector<std::int64_t>, std::int64_t> nonfinite_rows(const torch::Tensor& t, std::size_t max) {
  if (t.numel() == 0) return {{}, 0};
  auto bad = torch::isfinite(t).logical_not().reshape({t.size(0), -1}).any(1).nonzero().flatten().to(torch::kInt64);
  std::vector<std::int64_t> rows(bad.data_ptr<std::int64_t>(),
                                 bad.data_ptr<std::int64_t>() + std::min<std::size_t>(max, bad.numel()));
  return {rows, bad.numel()};
}

// float16 bits of a float32 tensor, as a contiguous half tensor.
torch::Tensor to_store_dtype(const torch::Tensor& t, bool half) {
  return (half ? t.to(torch::kHalf) : t.to(torch::kFloat32)).contiguous();
}

}  // namespace

std::int64_t topk_bytes_per_token(std::int64_t k, bool half_values, bool short_indices) {
  return k * ((half_values ? 2 : 4) + (short_indices ? 2 : 4)) + 4 + 4;
}

std::int64_t default_topk(bool half_values, bool short_indices) {
  std::int64_t k = 1;
  while (topk_bytes_per_token(2 * k, half_values, short_indices) <= 300) k *= 2;
  return k;
}

PrecomputeResult precompute(Communicator& comm, const Dataset& data, const std::string& split_name,
                            const TeacherOptions& topt, const StoreOptions& sopt, const TargetSpec& spec) {
  DISTILL_CHECK(!sopt.path.empty(), ConfigError, "store.path is empty; precompute needs a store directory");
  DISTILL_CHECK(topt.batch_size > 0, ConfigError, "teacher.batch_size must be positive, got ", topt.batch_size);
  store_dtype(sopt.dtype);
  const DataSplit& split = data.split(split_name);
  auto teacher = load_teacher(topt, comm);
  comm.check_same(teacher.fingerprint, "teacher fingerprint");
  comm.check_same(data.content_hash, "dataset hash");
  const bool mlm = data.task == "mlm";
  const long tl = teacher.model->num_labels();
  DISTILL_CHECK(mlm || tl == 0 || tl == data.num_labels(), DataError, "teacher ", teacher.file, " has ", tl,
                " labels, data set ", data.path, " has ", data.num_labels());
  const ModelConfig* tc = teacher.model->config();
  if (tc && tc->is_bert())
    check_fits_model(data, split_name, tc->vocab_size, tc->type_vocab, tc->max_positions, "teacher " + teacher.file);
  DISTILL_CHECK(!mlm || (tc && tc->kind == "bert_mlm"), DataError, "data set ", data.path,
                " is a masked-LM task; teacher ", teacher.file, " is a ", tc ? tc->kind : teacher.model->kind(),
                ", expected a bert_mlm model");
  DISTILL_CHECK(mlm || !tc || tc->kind != "bert_mlm", DataError, "teacher ", teacher.file,
                " is a masked-LM model; data set ", data.path, " is a ", data.task, " task");

  StoreMeta meta;
  meta.teacher_fingerprint = teacher.fingerprint;
  meta.dataset_hash = data.content_hash;
  meta.split = split_name;
  meta.dtype = sopt.dtype;
  meta.num_labels = mlm ? tc->vocab_size : data.num_labels();
  meta.num_examples = split.n;
  meta.shard_size = sopt.shard_size;
  meta.teacher_batch_size = topt.batch_size;
  const bool half = sopt.dtype == "float16";
  LayerMap hmap, amap;
  if (!spec.hidden_map.empty() || !spec.attention_map.empty()) {
    DISTILL_CHECK(!mlm && tc && tc->kind == "bert", ConfigError, "storing hidden states and attention maps needs a "
                  "BERT classifier teacher (distill or HF); ", teacher.file, " is a ",
                  tc ? tc->kind : teacher.model->kind());
    hmap = parse_layer_map(spec.hidden_map, spec.student_layers, tc->layers, "hidden", "distill.hidden_map");
    amap = parse_layer_map(spec.attention_map, spec.student_layers, tc->layers, "attention", "distill.attention_map");
    meta.hidden_layers = teacher_layers_of(hmap);
    meta.attention_layers = teacher_layers_of(amap);
    meta.teacher_layers = tc->layers;
    meta.hidden_size = tc->hidden;
    meta.heads = tc->heads;
    meta.seq = split.seq;
  }
  std::int64_t per_example = static_cast<std::int64_t>(meta.num_labels) * (half ? 2 : 4) + 8;
  if (mlm) {
    const bool short_idx = tc->vocab_size <= 65536;
    meta.targets = "mlm_topk";
    meta.topk = sopt.topk > 0 ? sopt.topk : default_topk(half, short_idx);
    DISTILL_CHECK(meta.topk <= tc->vocab_size, ConfigError, "store.topk = ", meta.topk, " exceeds the vocabulary of ",
                  tc->vocab_size);
    meta.index_dtype = short_idx ? "uint16" : "int32";
    meta.temperature = spec.temperature;
    std::int64_t masked = 0;
    for (auto y : split.mlm_labels) masked += y != kIgnoreLabel;
    per_example = split.n ? (masked * topk_bytes_per_token(meta.topk, half, short_idx)) / split.n + 16 : 0;
    if (comm.rank() == 0)
      spdlog::info("masked LM: top-{} teacher logits per masked token ({} bytes each, {} indices), {} masked tokens",
                   meta.topk, topk_bytes_per_token(meta.topk, half, short_idx), meta.index_dtype, masked);
  }
  per_example += static_cast<std::int64_t>(meta.hidden_layers.size()) * meta.seq * meta.hidden_size * 2 +
                 static_cast<std::int64_t>(meta.attention_layers.size()) * meta.heads * meta.seq * meta.seq * 2;
  const std::int64_t estimate = per_example * split.n;
  if (comm.rank() == 0)
    spdlog::info("store estimate: {} bytes per example ({} hidden layers, {} attention layers), {} bytes for {} "
                 "examples (store.max_bytes {})",
                 per_example, meta.hidden_layers.size(), meta.attention_layers.size(), estimate, split.n,
                 sopt.max_bytes);
  DISTILL_CHECK(estimate <= sopt.max_bytes, ConfigError, "the store would take about ", estimate, " bytes (",
                per_example, " per example x ", split.n, "), more than store.max_bytes = ", sopt.max_bytes,
                "; raise store.max_bytes, map fewer layers, or use teacher.online: true");
  const int rank = comm.rank(), world = comm.size();

  // Rank 0 checks an existing store and clears partial shards before anyone writes.
  std::string setup_error;
  if (rank == 0) {
    try {
      fs::create_directories(sopt.path);
      if (fs::exists(manifest_path(sopt.path))) {
        auto m = read_manifest(sopt.path);
        StoreMeta want = meta;
        check_store_meta(m.meta, want, "store " + sopt.path);
        DISTILL_CHECK(m.meta.shard_size == meta.shard_size && m.meta.dtype == meta.dtype, StoreError, "store ",
                      sopt.path, " has shard_size ", m.meta.shard_size, " and dtype ", m.meta.dtype,
                      ", the config asks for ", meta.shard_size, " and ", meta.dtype, "; use a new store.path");
        DISTILL_CHECK(layout_json(m.meta) == layout_json(meta), StoreError, "store ", sopt.path, " has layout ",
                      layout_json(m.meta), ", the config asks for ", layout_json(meta), "; use a new store.path");
      }
      if (const auto n = check_shard_batch_sizes(sopt.path, meta))
        spdlog::warn("store {}: {} committed shards do not record the teacher.batch_size they were computed with "
                     "(older distill); they are kept, and if it was not {} their float16 targets may differ in the "
                     "last bit from the new shards'", sopt.path, n, meta.teacher_batch_size);
      for (const auto& e : fs::directory_iterator(sopt.path))
        if (e.path().filename().string().find(".partial-") != std::string::npos) fs::remove(e.path());
    } catch (const Error& e) {
      setup_error = e.what();
    }
  }
  comm.broadcast_string(setup_error, 0);
  if (!setup_error.empty()) throw StoreError(setup_error);

  const auto ranges = shard_ranges(split.n, sopt.shard_size);
  std::int64_t mine = 0;
  for (std::size_t k = rank; k < ranges.size(); k += world) mine += ranges[k].end - ranges[k].begin;
  Progress progress("precompute (rank 0's shards)", mine, rank == 0);
  PrecomputeResult res;
  std::int64_t done = 0, committed = 0;
  nlohmann::json entries = nlohmann::json::array();
  // Which of this rank's shards are committed, read before the writer thread starts: from here on
  // only the writer thread calls HDF5 (the library is not thread-safe).
  // A shard the previous manifest lists is kept only while it still has the listed digest.
  std::map<std::string, ShardEntry> listed;
  if (fs::exists(manifest_path(sopt.path)))
    for (const auto& e : read_manifest(sopt.path).shards) listed[e.file] = e;
  std::vector<char> have;
  std::vector<std::string> digests;  // of the committed shards, when computed
  for (std::size_t k = rank; k < ranges.size(); k += world) {
    auto it = listed.find(shard_name(ranges[k]));
    digests.emplace_back();
    have.push_back(shard_is_committed(sopt.path, meta, ranges[k], it == listed.end() ? nullptr : &it->second,
                                      digests.back()));
  }
  // Store writes off the critical path: shard k is written by a thread while the teacher computes
  // shard k + 1; at most one shard waits to be written.
  // The writer returns the shard's manifest entry and the seconds it took.
  std::future<std::pair<nlohmann::json, double>> writing;
  std::int64_t writing_rows = 0;
  auto collect = [&] {
    if (!writing.valid()) return;
    const auto t0 = std::chrono::steady_clock::now();
    auto [entry, seconds] = writing.get();
    entries.push_back(std::move(entry));
    res.write_seconds += seconds;
    res.write_wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++res.shards_written;
    ++committed;
    res.examples_computed += writing_rows;
    done += writing_rows;
    progress.update(done);
  };
  torch::NoGradGuard no_grad;
  std::size_t mine_k = 0;
  for (std::size_t k = rank; k < ranges.size(); k += world, ++mine_k) {
    const auto& r = ranges[k];
    const auto path = (fs::path(sopt.path) / shard_name(r)).string();
    if (have[mine_k]) {
      ++res.shards_skipped;
      entries.push_back(shard_entry(r, path, digests[mine_k]));
      done += r.end - r.begin;
      progress.update(done);
      continue;
    }
    if (std::getenv("DISTILL_FAULT_KILL_AFTER_SHARDS")) collect();  // the hook counts committed shards
    maybe_fault(rank, committed, path + ".partial-" + std::to_string(rank));
    // Test hook: DISTILL_FAULT_TEACHER_DELAY_MS slows every shard down (streaming tests).
    if (const char* d = std::getenv("DISTILL_FAULT_TEACHER_DELAY_MS"))
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(d)));
    std::vector<torch::Tensor> outs, offsets_parts, lses, idx_parts;
    std::map<long, std::vector<torch::Tensor>> hidden, attention;
    std::vector<std::int64_t> ids;
    for (std::int64_t b = r.begin; b < r.end; b += topt.batch_size) {
      std::vector<std::int64_t> rows;
      for (std::int64_t i = b; i < std::min(r.end, b + topt.batch_size); ++i) rows.push_back(i);
      auto batch = make_batch(split, rows, nullptr);
      auto o = teacher.model->forward(batch.inputs, !hmap.empty(), !amap.empty());
      const auto& z = o.logits;
      for (auto i : rows) ids.push_back(split.example_id[i]);
      if (mlm) {
        DISTILL_CHECK(z.dim() == 2 && z.size(0) == batch.labels.size(0) && z.size(1) == meta.num_labels, DataError,
                      "teacher ", teacher.file, " returned logits of shape ", z.sizes(), " for ",
                      batch.labels.size(0), " masked tokens over a vocabulary of ", meta.num_labels);
        auto top = z.topk(meta.topk, -1);
        outs.push_back(std::get<0>(top));
        idx_parts.push_back(std::get<1>(top));
        lses.push_back((z / meta.temperature).logsumexp(-1));
        offsets_parts.push_back(batch.inputs.predict_mask.sum(1));
        continue;
      }
      DISTILL_CHECK(z.size(1) == data.num_labels(), DataError, "teacher ", teacher.file, " returned ", z.size(1),
                    " logits per example, data set ", data.path, " has ", data.num_labels(), " labels");
      outs.push_back(z);
      for (long l : meta.hidden_layers) hidden[l].push_back(o.hidden.at(l));
      for (long l : meta.attention_layers) attention[l].push_back(o.attentions.at(l - 1));
    }
    auto keep = std::make_shared<std::vector<torch::Tensor>>();  // owns the buffers the arrays point into
    std::vector<ShardArray> arrays;
    std::vector<std::int64_t> token_offsets;  // mlm: example i's tokens are rows [offsets[i], offsets[i + 1])
    // Targets are stored only when finite: a NaN teacher fails here, naming the examples, before
    // anything of the shard is written.
    auto refuse_nonfinite = [&](const std::string& name, const torch::Tensor& t, bool f16) {
      const auto [rows, count] = nonfinite_rows(t, 5);
      if (rows.empty()) return;
      std::string examples;
      std::int64_t last = -1;
      for (auto row : rows) {
        auto i = row;  // the example of a masked token's row
        if (!token_offsets.empty())
          i = std::upper_bound(token_offsets.begin(), token_offsets.end(), row) - token_offsets.begin() - 1;
        if (i != last) examples += (examples.empty() ? "" : ", ") + std::to_string(ids.at(static_cast<std::size_t>(i)));
        last = i;
      }
      throw DataError(str("teacher ", teacher.file, " returned non-finite ", name, " (NaN or infinity",
                          f16 ? ", or beyond float16's range of +-65504" : "", ") in ", count,
                          token_offsets.empty() ? " examples" : " masked tokens", " of shard ", shard_name(r),
                          " (rows [", r.begin, ", ", r.end, ")), first at example ids ", examples,
                          "; nothing of this shard was stored. Check the teacher's weights and teacher.precision"));
    };
    auto add = [&](const std::string& name, h5::Type type, const torch::Tensor& t, hsize_t chunk_rows) {
      keep->push_back(t.to(torch::kCPU).contiguous());
      if (type == h5::Type::kFloat16 || type == h5::Type::kFloat32)
        refuse_nonfinite(name, keep->back(), type == h5::Type::kFloat16);
      std::vector<hsize_t> shape(t.sizes().begin(), t.sizes().end());
      arrays.push_back({name, type, shape, keep->back().data_ptr(), chunk_rows});
    };
    const auto vtype = half ? h5::Type::kFloat16 : h5::Type::kFloat32;
    if (mlm) {
      auto counts = torch::cat(offsets_parts).to(torch::kCPU);
      add("row_offsets", h5::Type::kInt64, torch::cat({torch::zeros({1}, torch::kInt64), counts.cumsum(0)}), 256);
      const auto& offsets = keep->back();
      token_offsets.assign(offsets.data_ptr<std::int64_t>(), offsets.data_ptr<std::int64_t>() + offsets.numel());
      const bool short_idx = meta.index_dtype == "uint16";
      auto idx = torch::cat(idx_parts);
      // uint16 has no torch dtype here: store the low 16 bits of int32 ids < 65536 as raw uint16.
      add("topk_values", vtype, to_store_dtype(torch::cat(outs), half), 1024);
      add("topk_indices", short_idx ? h5::Type::kUInt16 : h5::Type::kInt32,
          short_idx ? idx.to(torch::kInt32).to(torch::kInt16) : idx.to(torch::kInt32), 1024);
      add("lse", h5::Type::kFloat32, torch::cat(lses).to(torch::kFloat32), 1024);
    } else {
      add("logits", vtype, to_store_dtype(torch::cat(outs), half), 256);
      // Layers: float16 always, one chunk per example.
      for (auto& [l, parts] : hidden) add("hidden/" + std::to_string(l), h5::Type::kFloat16, to_store_dtype(torch::cat(parts), true), 1);
      for (auto& [l, parts] : attention)
        add("attention/" + std::to_string(l), h5::Type::kFloat16, to_store_dtype(torch::cat(parts), true), 1);
    }
    collect();  // the previous shard
    writing_rows = r.end - r.begin;
    writing = std::async(std::launch::async, [&sopt, &meta, r, path, rank, keep, arrays = std::move(arrays),
                                              ids = std::move(ids)]() {
      const auto t0 = std::chrono::steady_clock::now();
      write_shard(sopt.path, meta, r, arrays, ids, rank);
      auto e = shard_entry(r, path);
      return std::make_pair(std::move(e), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    });
  }
  collect();
  res.seconds = progress.elapsed_s();

  // Rank 0 writes the manifest from every rank's entries.
  auto all = comm.allgather_string(entries.dump());
  std::int64_t counts[3] = {res.shards_written, res.shards_skipped, res.examples_computed};
  comm.allreduce(counts, 3, DType::kInt64, ReduceOp::kSum);
  res.shards_written = counts[0];
  res.shards_skipped = counts[1];
  res.examples_computed = counts[2];
  Manifest m;
  m.meta = meta;
  for (const auto& s : all)
    for (const auto& e : nlohmann::json::parse(s))
      m.shards.push_back({e.at("file").get<std::string>(),
                          {e.at("begin").get<std::int64_t>(), e.at("end").get<std::int64_t>()},
                          e.at("bytes").get<std::int64_t>(), e.at("digest").get<std::string>()});
  std::sort(m.shards.begin(), m.shards.end(),
            [](const ShardEntry& a, const ShardEntry& b) { return a.range.begin < b.range.begin; });
  for (const auto& e : m.shards) res.store_bytes += e.bytes;
  if (rank == 0) write_manifest(sopt.path, m);
  comm.barrier();
  return res;
}

}  // namespace distill
