#include "distill/teacher/precompute.h"

#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "distill/model/load.h"
#include "distill/store/manifest.h"
#include "distill/store/shard.h"
#include "distill/train/batch.h"
#include "distill/util/error.h"
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
    auto m = load_bert(path);
    t.model = make_bert_teacher(m.model);
    t.file = m.file;
    t.fingerprint = m.fingerprint;
  }
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

// Returns true when a committed shard for `r` exists and reads back with `meta`.
bool shard_is_committed(const std::string& path, const StoreMeta& meta, const ShardRange& r) {
  if (!fs::exists(path)) return false;
  try {
    read_shard(path, meta, r);
    return true;
  } catch (const StoreError& e) {
    spdlog::warn("redoing {}: {}", path, e.what());
    return false;
  }
}

}  // namespace

PrecomputeResult precompute(Communicator& comm, const Dataset& data, const std::string& split_name,
                            const TeacherOptions& topt, const StoreOptions& sopt) {
  DISTILL_CHECK(!sopt.path.empty(), ConfigError, "store.path is empty; precompute needs a store directory");
  DISTILL_CHECK(topt.batch_size > 0, ConfigError, "teacher.batch_size must be positive, got ", topt.batch_size);
  store_dtype(sopt.dtype);
  const TokenSplit& split = data.split(split_name);
  auto teacher = load_teacher(topt.path);
  comm.check_same(teacher.fingerprint, "teacher fingerprint");
  comm.check_same(data.content_hash, "dataset hash");
  const long tl = teacher.model->num_labels();
  DISTILL_CHECK(tl == 0 || tl == data.num_labels(), DataError, "teacher ", teacher.file, " has ", tl,
                " labels, data set ", data.path, " has ", data.num_labels());

  StoreMeta meta;
  meta.teacher_fingerprint = teacher.fingerprint;
  meta.dataset_hash = data.content_hash;
  meta.split = split_name;
  meta.dtype = sopt.dtype;
  meta.num_labels = data.num_labels();
  meta.num_examples = split.n;
  meta.shard_size = sopt.shard_size;
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
      }
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
  const bool half = sopt.dtype == "float16";
  torch::NoGradGuard no_grad;
  for (std::size_t k = rank; k < ranges.size(); k += world) {
    const auto& r = ranges[k];
    const auto path = (fs::path(sopt.path) / shard_name(r)).string();
    if (shard_is_committed(path, meta, r)) {
      ++res.shards_skipped;
    } else {
      maybe_fault(rank, committed, path + ".partial-" + std::to_string(rank));
      std::vector<torch::Tensor> outs;
      std::vector<std::int64_t> ids;
      for (std::int64_t b = r.begin; b < r.end; b += topt.batch_size) {
        std::vector<std::int64_t> rows;
        for (std::int64_t i = b; i < std::min(r.end, b + topt.batch_size); ++i) rows.push_back(i);
        auto batch = make_batch(split, rows, nullptr);
        auto z = teacher.model->forward(batch.inputs).logits;
        DISTILL_CHECK(z.size(1) == data.num_labels(), DataError, "teacher ", teacher.file, " returned ", z.size(1),
                      " logits per example, data set ", data.path, " has ", data.num_labels(), " labels");
        outs.push_back(z);
        for (auto i : rows) ids.push_back(split.example_id[i]);
      }
      auto logits = torch::cat(outs).contiguous();  // [count, num_labels] float32
      if (half) logits = logits.to(torch::kHalf).contiguous();
      write_shard(sopt.path, meta, r, logits.data_ptr(), ids, rank);
      ++res.shards_written;
      ++committed;
      res.examples_computed += r.end - r.begin;
    }
    entries.push_back({{"file", shard_name(r)}, {"begin", r.begin}, {"end", r.end},
                       {"bytes", static_cast<std::int64_t>(fs::file_size(path))}, {"digest", file_digest(path)}});
    done += r.end - r.begin;
    progress.update(done);
  }
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
