#include "distill/teacher/precompute.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "distill/data/batch.h"
#include "distill/model/device.h"
#include "distill/store/sizing.h"
#include "distill/store/writer.h"
#include "distill/util/error.h"
#include "distill/util/progress.h"

namespace distill {

namespace {

// Every rank has the same teacher and data set, and the teacher fits the data and its task.
void check_teacher(Communicator& comm, const Dataset& data, const std::string& split_name,
                   const LoadedTeacher& teacher) {
  comm.check_same(teacher.fingerprint, "teacher fingerprint");
  comm.check_same(data.content_hash, "dataset hash");
  const bool mlm = data.task == "mlm";
  const long tl = teacher.model->num_labels();
  DISTILL_CHECK(mlm || tl == 0 || tl == data.num_labels(), DataError, "teacher ", teacher.file, " has ", tl,
                " labels, data set ", data.path, " has ", data.num_labels());
  const ModelConfig* tc = teacher.model->config();
  if (tc && tc->is_bert())
    check_fits_model(data, split_name, tc->vocab_size, tc->type_vocab, tc->max_positions, "teacher " + teacher.file);
  DISTILL_CHECK(!mlm || (tc && tc->kind == ModelKind::kBertMlm), DataError, "data set ", data.path,
                " is a masked-LM task; teacher ", teacher.file, " is a ",
                tc ? std::string(name(tc->kind)) : teacher.model->kind(), ", expected a bert_mlm model");
  DISTILL_CHECK(mlm || !tc || tc->kind != ModelKind::kBertMlm, DataError, "teacher ", teacher.file,
                " is a masked-LM model; data set ", data.path, " is a ", data.task, " task");
}

// Records the teacher's layer shapes and the layers `spec` stores.
void plan_layers(StoreMeta& meta, const LoadedTeacher& teacher, const DataSplit& split, const TargetSpec& spec) {
  const long layers = storable_teacher_layers(teacher);
  auto check = [layers](const std::vector<long>& v, long first, const char* what) {
    const bool ok = std::is_sorted(v.begin(), v.end()) && std::adjacent_find(v.begin(), v.end()) == v.end() &&
                    (v.empty() || (v.front() >= first && v.back() <= layers));
    DISTILL_CHECK(ok, ConfigError, "the teacher's ", what, " layers to store must ascend without repeats within ",
                  first, "..", layers);
  };
  check(spec.hidden_layers, 0, "hidden");
  check(spec.attention_layers, 1, "attention");
  check(spec.qkv_layers, 1, "query/key/value");
  const ModelConfig& tc = *teacher.model->config();
  meta.hidden_layers = spec.hidden_layers;
  meta.attention_layers = spec.attention_layers;
  meta.qkv_layers = spec.qkv_layers;
  meta.teacher_layers = tc.layers;
  meta.hidden_size = tc.hidden;
  meta.heads = tc.heads;
  meta.seq = split.seq;
}

// The StoreMeta of the store this precompute writes (plan_store: rank 0 prints the estimate,
// every rank refuses a store over store.max_bytes).
StoreMeta plan(const Communicator& comm, const Dataset& data, const std::string& split_name,
               const LoadedTeacher& teacher, const TeacherOptions& topt, const StoreOptions& sopt,
               const TargetSpec& spec) {
  const DataSplit& split = data.split(split_name);
  const bool mlm = data.task == "mlm";
  StoreMeta meta;
  meta.teacher_fingerprint = teacher.fingerprint;
  meta.dataset_hash = data.content_hash;
  meta.split = split_name;
  meta.num_labels = mlm ? teacher.model->config()->vocab_size : data.num_labels();
  meta.num_examples = split.n;
  meta.teacher_batch_size = topt.batch_size;
  meta.teacher_precision = precision_name(teacher.precision);
  if (spec.intermediate || !spec.hidden_layers.empty() || !spec.attention_layers.empty() || !spec.qkv_layers.empty())
    plan_layers(meta, teacher, split, spec);
  std::int64_t masked = 0;
  if (mlm) {
    meta.targets = "mlm_topk";
    meta.temperature = spec.temperature;
    split.scan([&](const DataSplit& b, std::int64_t) {
      for (auto y : b.mlm_labels) masked += y != kIgnoreLabel;
    });
  }
  return plan_store(meta, sopt, masked, comm.rank() == 0);
}

// Rank 0 sets the store up (prepare_store) before any rank writes; its error reaches every rank.
void prepare(Communicator& comm, const std::string& dir, const StoreMeta& meta) {
  std::string error;
  if (comm.rank() == 0) {
    try {
      prepare_store(dir, meta);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  comm.broadcast_string(error, 0);
  if (!error.empty()) throw StoreError(error);
}

// `t` on the host as a vector of T (`type`).
template <typename T>
std::vector<T> to_host(const torch::Tensor& t, torch::ScalarType type) {
  const auto c = t.to(torch::kCPU, type).contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

std::vector<float> floats(const std::vector<torch::Tensor>& parts) {
  return to_host<float>(torch::cat(parts), torch::kFloat32);
}

// The teacher's targets for rows `r` of the split, computed batch by batch (under no-grad).
ShardTargets teacher_targets(const LoadedTeacher& teacher, const Dataset& data, const DataSplit& split,
                             const StoreMeta& meta, const ShardRange& r, long batch_size) {
  const bool mlm = meta.targets == "mlm_topk";
  std::vector<torch::Tensor> outs, counts, indices, lses;
  std::map<long, std::vector<torch::Tensor>> hidden, attention, query, key, value;
  ShardTargets t;
  for (std::int64_t b = r.begin; b < r.end; b += batch_size) {
    std::vector<std::int64_t> rows;
    for (std::int64_t i = b; i < std::min(r.end, b + batch_size); ++i) rows.push_back(i);
    auto batch = make_batch(split, rows, nullptr);
    // Q/K/V come with the attention maps (ModelOutput::qkv).
    auto o = teacher.model->forward(batch.inputs, !meta.hidden_layers.empty(),
                                    !meta.attention_layers.empty() || !meta.qkv_layers.empty());
    const auto& z = o.logits;
    for (auto id : split.select(rows).example_id) t.example_ids.push_back(id);
    if (mlm) {
      DISTILL_CHECK(z.dim() == 2 && z.size(0) == batch.labels.size(0) && z.size(1) == meta.num_labels, DataError,
                    "teacher ", teacher.file, " returned logits of shape ", z.sizes(), " for ", batch.labels.size(0),
                    " masked tokens over a vocabulary of ", meta.num_labels);
      auto top = z.topk(meta.topk, -1);
      outs.push_back(std::get<0>(top));
      indices.push_back(std::get<1>(top));
      lses.push_back((z / meta.temperature).logsumexp(-1));
      counts.push_back(batch.inputs.predict_mask.sum(1));
      continue;
    }
    DISTILL_CHECK(z.size(1) == data.num_labels(), DataError, "teacher ", teacher.file, " returned ", z.size(1),
                  " logits per example, data set ", data.path, " has ", data.num_labels(), " labels");
    outs.push_back(z);
    for (long l : meta.hidden_layers) hidden[l].push_back(o.hidden.at(l));
    for (long l : meta.attention_layers) attention[l].push_back(o.attentions.at(l - 1));
    for (long l : meta.qkv_layers) {
      const auto& q = o.qkv.at(l - 1);
      query[l].push_back(q.query);
      key[l].push_back(q.key);
      value[l].push_back(q.value);
    }
  }
  if (mlm) {
    t.tokens = to_host<std::int64_t>(torch::cat(counts), torch::kInt64);
    t.topk_values = floats(outs);
    t.topk_indices = to_host<std::int64_t>(torch::cat(indices), torch::kInt64);
    t.lse = floats(lses);
    return t;
  }
  t.logits = floats(outs);
  for (const auto& [l, parts] : hidden) t.hidden[l] = floats(parts);
  for (const auto& [l, parts] : attention) t.attention[l] = floats(parts);
  for (const auto& [l, parts] : query) t.query[l] = floats(parts);
  for (const auto& [l, parts] : key) t.key[l] = floats(parts);
  for (const auto& [l, parts] : value) t.value[l] = floats(parts);
  return t;
}

// Every rank's manifest entries become manifest.json (written by rank 0); counts are summed.
PrecomputeResult finish(Communicator& comm, const StoreWriter& writer, double seconds) {
  const auto& s = writer.stats();
  PrecomputeResult res;
  res.seconds = seconds;
  res.write_seconds = s.write_seconds;
  res.write_wait_seconds = s.wait_seconds;
  auto all = comm.allgather_string(writer.entries());
  std::int64_t counts[3] = {s.shards_written, s.shards_skipped, s.rows_written};
  comm.allreduce(counts, 3, DType::kInt64, ReduceOp::kSum);
  res.shards_written = counts[0];
  res.shards_skipped = counts[1];
  res.examples_computed = counts[2];
  for (const auto& e : writer.commit_manifest(all).shards) res.store_bytes += e.bytes;
  comm.barrier();
  return res;
}

}  // namespace

PrecomputeResult check_teacher_precision(Communicator& comm, const LoadedTeacher& teacher, const DataSplit& split,
                                         long batch_size, std::int64_t rows) {
  PrecomputeResult res;
  res.teacher_precision = precision_name(teacher.precision);
  torch::NoGradGuard no_grad;
  const std::int64_t n = std::min(rows, split.n);
  std::vector<std::int64_t> mine;
  for (std::int64_t k = comm.rank(); k < n; k += comm.size()) mine.push_back(k * split.n / n);
  auto logits = [&](const ModelInputs& in, c10::ScalarType p) {
    teacher.model->place(teacher.device, p);
    return teacher.model->forward(in, false, false).logits.to(torch::kCPU, torch::kFloat32);
  };
  double sums[3] = {0, 0, 0};  // logit rows, top-1 matches, KL sum
  double max_abs = 0;
  try {
    for (std::size_t b = 0; b < mine.size(); b += static_cast<std::size_t>(batch_size)) {
      const auto end = std::min(mine.size(), b + static_cast<std::size_t>(batch_size));
      const std::vector<std::int64_t> part(mine.begin() + static_cast<std::ptrdiff_t>(b),
                                           mine.begin() + static_cast<std::ptrdiff_t>(end));
      const auto batch = make_batch(split, part, nullptr);
      const auto reduced = logits(batch.inputs, teacher.precision);
      const auto full = logits(batch.inputs, c10::ScalarType::Float);
      const auto lp = torch::log_softmax(full, -1), lq = torch::log_softmax(reduced, -1);
      sums[0] += static_cast<double>(full.size(0));
      sums[1] += full.argmax(-1).eq(reduced.argmax(-1)).sum().item<double>();
      const auto terms = torch::where(lp.isfinite(), lp.exp() * (lp - lq), torch::zeros_like(lp));
      sums[2] += terms.sum().item<double>();
      if (full.numel() > 0) max_abs = std::max(max_abs, (full - reduced).abs().max().item<double>());
    }
  } catch (...) {
    teacher.model->place(teacher.device, teacher.precision);
    throw;
  }
  teacher.model->place(teacher.device, teacher.precision);
  comm.allreduce(sums, 3, DType::kFloat64, ReduceOp::kSum);
  comm.allreduce(&max_abs, 1, DType::kFloat64, ReduceOp::kMax);
  res.check_rows = static_cast<std::int64_t>(sums[0]);
  res.check_max_abs = max_abs;
  if (sums[0] > 0) {
    res.check_top1 = sums[1] / sums[0];
    res.check_kl = sums[2] / sums[0];
  }
  return res;
}

PrecomputeResult precompute(Communicator& comm, const Dataset& data, const std::string& split_name,
                            const LoadedTeacher& teacher, const TeacherOptions& topt, const StoreOptions& sopt,
                            const TargetSpec& spec, const PrecomputeHooks& hooks) {
  DISTILL_CHECK(!sopt.path.empty(), ConfigError, "store.path is empty; precompute needs a store directory");
  DISTILL_CHECK(topt.batch_size > 0, ConfigError, "teacher.batch_size must be positive, got ", topt.batch_size);
  store_dtype(sopt.dtype);
  const DataSplit& split = data.split(split_name);
  check_teacher(comm, data, split_name, teacher);
  const StoreMeta meta = plan(comm, data, split_name, teacher, topt, sopt, spec);
  prepare(comm, sopt.path, meta);
  const int rank = comm.rank();
  PrecomputeResult check;
  if (teacher.precision != c10::ScalarType::Float) {
    check = check_teacher_precision(comm, teacher, split, topt.batch_size);
    if (rank == 0)
      spdlog::info(
          "teacher in {} against its fp32 outputs on {} sampled {}: top-1 match {:.4f}, mean KL(fp32 || {}) "
          "{:.3g}, largest output difference {:.3g}",
          check.teacher_precision, check.check_rows, meta.targets == "mlm_topk" ? "masked tokens" : "examples",
          check.check_top1, check.teacher_precision, check.check_kl, check.check_max_abs);
  }
  std::int64_t mine = 0;
  for (const auto& r : rank_shards(meta, rank, comm.size())) mine += r.end - r.begin;
  Progress progress("precompute (rank 0's shards)", mine, rank == 0);
  StoreWriter writer(sopt.path, meta, rank, comm.size());
  std::int64_t shown = 0;
  auto report = [&] {
    if (writer.stats().rows_done != shown) progress.update(shown = writer.stats().rows_done);
  };
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < writer.shards(); ++i) {
    if (writer.keep_if_committed(i)) {
      report();
      continue;
    }
    if (hooks.before_shard) {
      writer.wait();  // the hook counts committed shards
      report();
      hooks.before_shard(rank, writer.stats().shards_written, writer.path(i));
    }
    auto shard = writer.encode(i, teacher_targets(teacher, data, split, meta, writer.range(i), topt.batch_size));
    // Targets are stored only when finite: a NaN teacher fails here, naming the examples, before
    // anything of the shard is written.
    DISTILL_CHECK(shard.nonfinite.empty(), DataError, "teacher ", teacher.file, " returned ", shard.nonfinite,
                  "; nothing of this shard was stored. Check the teacher's weights and teacher.precision");
    writer.write(std::move(shard));
    report();
  }
  writer.wait();
  report();
  auto res = finish(comm, writer, progress.elapsed_s());
  res.teacher_precision = precision_name(teacher.precision);
  res.check_rows = check.check_rows;
  res.check_top1 = check.check_top1;
  res.check_kl = check.check_kl;
  res.check_max_abs = check.check_max_abs;
  return res;
}

}  // namespace distill
