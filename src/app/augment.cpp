// `distill augment` (Note [augmentation] in data/augment.h): copies of a split with word pieces
// replaced (masked-LM top-k or random pieces), or noise / mixup copies of feature vectors.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/app/commands.h"
#include "distill/data/augment.h"
#include "distill/data/dataset_writer.h"
#include "distill/model/load.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

struct Counts {
  std::int64_t rows = 0, replaceable = 0, replaced = 0, from_model = 0;
};

// One copy of a row in the making: its ids, the positions it replaces and its generator.
struct Pending {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> positions;
  SplitMix64 rng{0};
};

// The masked LM's top-k pieces at each replaced position of `rows` (row-major), one forward per
// `batch` rows with every replaced position masked.
std::vector<std::vector<std::int32_t>> model_candidates(NetworkImpl& lm, const std::vector<Pending>& rows,
                                                        const DataSplit& block, std::int64_t copies,
                                                        std::int32_t mask_id, long top_k, long batch) {
  torch::NoGradGuard g;
  std::vector<std::vector<std::int32_t>> out;
  const auto seq = block.seq;
  for (std::size_t b = 0; b < rows.size(); b += static_cast<std::size_t>(batch)) {
    const auto e = std::min(rows.size(), b + static_cast<std::size_t>(batch));
    const auto n = static_cast<std::int64_t>(e - b);
    auto ids = torch::empty({n, seq}, torch::kInt64), mask = torch::empty({n, seq}, torch::kInt64),
         types = torch::empty({n, seq}, torch::kInt64);
    auto predict = torch::zeros({n, seq}, torch::kBool);
    for (std::int64_t r = 0; r < n; ++r) {
      const auto& p = rows[b + static_cast<std::size_t>(r)];
      const auto src = static_cast<std::int64_t>(b + static_cast<std::size_t>(r)) / copies;
      for (std::int64_t t = 0; t < seq; ++t) {
        ids[r][t] = p.ids[static_cast<std::size_t>(t)];
        mask[r][t] = block.attention_mask[static_cast<std::size_t>(src * seq + t)];
        types[r][t] = block.token_type_ids[static_cast<std::size_t>(src * seq + t)];
      }
      for (auto pos : p.positions) {
        ids[r][pos] = mask_id;
        predict[r][pos] = true;
      }
    }
    if (!predict.any().item<bool>()) continue;
    ModelInputs in{ids, mask, types, {}, predict};
    auto logits = lm.forward(in).logits;  // [predicted positions, vocab]
    auto top = std::get<1>(logits.topk(std::min<long>(top_k, logits.size(1)), 1)).to(torch::kInt32).contiguous();
    const auto* t = top.data_ptr<std::int32_t>();
    for (std::int64_t i = 0; i < top.size(0); ++i) out.emplace_back(t + i * top.size(1), t + (i + 1) * top.size(1));
  }
  return out;
}

// Text copies of one block; appended to `w`.
void augment_text_block(const AugmentOptions& o, const DataSplit& block, const ReplacementVocab& v, NetworkImpl* lm,
                        std::int32_t mask_id, DatasetWriter& w, Counts& counts) {
  std::vector<Pending> rows;
  for (std::int64_t i = 0; i < block.n; ++i)
    for (std::int64_t c = 0; c < o.copies; ++c) {
      Pending p;
      p.rng = augment_rng(o.seed, block.example_id[static_cast<std::size_t>(i)], c);
      const auto* ids = &block.input_ids[static_cast<std::size_t>(i * block.seq)];
      const auto* mask = &block.attention_mask[static_cast<std::size_t>(i * block.seq)];
      p.ids.assign(ids, ids + block.seq);
      p.positions = replaced_positions(ids, mask, block.seq, v, o.share, p.rng);
      for (std::int64_t t = 0; t < block.seq; ++t)
        counts.replaceable += mask[t] == 1 && v.kind[static_cast<std::size_t>(ids[t])] != ReplacementVocab::kSpecial;
      rows.push_back(std::move(p));
    }
  std::vector<std::vector<std::int32_t>> cands;
  if (lm) cands = model_candidates(*lm, rows, block, o.copies, mask_id, o.top_k, o.batch);
  std::size_t at = 0;
  DataSplit out;
  out.seq = block.seq;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    auto& p = rows[r];
    const auto src = static_cast<std::int64_t>(r) / o.copies;
    for (auto pos : p.positions) {
      static const std::vector<std::int32_t> none;
      const auto& cand = lm ? cands.at(at++) : none;
      const auto orig = p.ids[static_cast<std::size_t>(pos)];
      const auto rep = pick_replacement(orig, cand, v, p.rng);
      counts.from_model += std::find(cand.begin(), cand.end(), rep) != cand.end();
      p.ids[static_cast<std::size_t>(pos)] = rep;
    }
    counts.replaced += static_cast<std::int64_t>(p.positions.size());
    out.input_ids.insert(out.input_ids.end(), p.ids.begin(), p.ids.end());
    const auto first = static_cast<std::ptrdiff_t>(src * block.seq);
    out.attention_mask.insert(out.attention_mask.end(), block.attention_mask.begin() + first,
                              block.attention_mask.begin() + first + block.seq);
    out.token_type_ids.insert(out.token_type_ids.end(), block.token_type_ids.begin() + first,
                              block.token_type_ids.begin() + first + block.seq);
    out.labels.push_back(kIgnoreLabel);
    if (w.regression()) out.scores.push_back(std::nanf(""));  // copies are unlabeled
    out.example_id.push_back(block.example_id[static_cast<std::size_t>(src)] * o.copies +
                             static_cast<std::int64_t>(r) % o.copies);
    ++out.n;
  }
  counts.rows += out.n;
  w.append("train", out);
}

// Feature copies of the whole split (feature data sets are held in memory).
void augment_features(const AugmentOptions& o, const DataSplit& split, DatasetWriter& w, Counts& counts) {
  const auto all = split.all();
  const auto dim = all.dim;
  std::vector<double> mean(static_cast<std::size_t>(dim), 0.0), sd(static_cast<std::size_t>(dim), 0.0);
  for (std::int64_t i = 0; i < all.n; ++i)
    for (std::int64_t j = 0; j < dim; ++j) mean[j] += all.features[static_cast<std::size_t>(i * dim + j)];
  for (auto& m : mean) m /= static_cast<double>(all.n);
  for (std::int64_t i = 0; i < all.n; ++i)
    for (std::int64_t j = 0; j < dim; ++j) {
      const double d = all.features[static_cast<std::size_t>(i * dim + j)] - mean[j];
      sd[j] += d * d;
    }
  for (auto& s : sd) s = std::sqrt(s / static_cast<double>(all.n));
  DataSplit out;
  out.dim = dim;
  for (std::int64_t i = 0; i < all.n; ++i)
    for (std::int64_t c = 0; c < o.copies; ++c) {
      auto rng = augment_rng(o.seed, all.example_id[static_cast<std::size_t>(i)], c);
      const float* x = &all.features[static_cast<std::size_t>(i * dim)];
      if (o.mixup > 0) {
        const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(all.n)));
        const double lam = beta(rng, o.mixup);
        const float* y = &all.features[static_cast<std::size_t>(j * dim)];
        for (std::int64_t k = 0; k < dim; ++k)
          out.features.push_back(static_cast<float>(lam * x[k] + (1 - lam) * y[k]));
      } else {
        for (std::int64_t k = 0; k < dim; ++k)
          out.features.push_back(static_cast<float>(x[k] + o.noise * sd[k] * normal(rng)));
      }
      out.labels.push_back(kIgnoreLabel);
      if (w.regression()) out.scores.push_back(std::nanf(""));  // copies are unlabeled
      out.example_id.push_back(all.example_id[static_cast<std::size_t>(i)] * o.copies + c);
      ++out.n;
      if (out.n == kDatasetChunkRows) {
        counts.rows += out.n;
        w.append("train", out);
        out = DataSplit{};
        out.dim = dim;
      }
    }
  counts.rows += out.n;
  if (out.n > 0) w.append("train", out);
}

void check_augment_options(const AugmentOptions& o, const Dataset& d) {
  DISTILL_CHECK(o.copies >= 1, ConfigError, "--copies must be at least 1, got ", o.copies);
  DISTILL_CHECK(d.task != "mlm", ConfigError, o.input, " is a masked-LM data set; augment takes classification data");
  if (d.task == "features") {
    DISTILL_CHECK((o.noise > 0) != (o.mixup > 0), ConfigError,
                  "feature data sets take one of --noise SIGMA (Gaussian noise in feature standard deviations) or "
                  "--mixup A (Beta(A, A) mixing), got --noise ",
                  o.noise, " and --mixup ", o.mixup);
    DISTILL_CHECK(o.mlm.empty(), ConfigError, "--mlm replaces word pieces; ", o.input, " holds feature vectors");
    return;
  }
  DISTILL_CHECK(o.share > 0 && o.share <= 1, ConfigError, "--share must be in (0, 1], got ", o.share);
  DISTILL_CHECK(!o.vocab.empty(), ConfigError, "augmenting text needs --vocab (the vocab.txt ", o.input,
                " was prepared with)");
  DISTILL_CHECK(o.top_k >= 1 && o.batch >= 1, ConfigError, "--top-k and --batch must be at least 1");
  DISTILL_CHECK(o.noise == 0 && o.mixup == 0, ConfigError, "--noise and --mixup are for feature data sets");
}

void augment(const AugmentOptions& o) {
  const auto d = read_dataset(o.input);
  check_augment_options(o, d);
  const auto& split = d.split(o.split);
  DISTILL_CHECK(split.n > 0, DataError, o.input, ": split ", o.split, " is empty");
  if (!parent_dir(o.out).empty()) fs::create_directories(parent_dir(o.out));
  DatasetWriter w(o.out, d);
  Counts counts;
  nlohmann::json meta = {{"source", o.input},  {"split", o.split}, {"content_hash", d.content_hash},
                         {"copies", o.copies}, {"seed", o.seed},   {"id_rule", "source id * copies + copy"}};
  if (d.task == "features") {
    meta.update({{"noise", o.noise}, {"mixup", o.mixup}});
    augment_features(o, split, w, counts);
  } else {
    const auto tok = WordPieceTokenizer::from_file(o.vocab);
    DISTILL_CHECK(tok.vocab_hash() == d.vocab_hash, DataError, "--vocab ", o.vocab, " (hash ", tok.vocab_hash(),
                  ") is not the vocabulary of ", o.input, " (hash ", d.vocab_hash, ")");
    const auto v = ReplacementVocab::from(tok);
    std::unique_ptr<LoadedModel> lm;
    if (!o.mlm.empty()) {
      lm = std::make_unique<LoadedModel>(load_model(o.mlm, true, 0, ModelKind::kBertMlm));
      const auto& mc = lm->model->config();
      DISTILL_CHECK(mc.kind == ModelKind::kBertMlm, ConfigError, "--mlm ", o.mlm, " is not a masked LM");
      DISTILL_CHECK(tok.mask_id() >= 0, DataError, o.vocab, " has no [MASK] token for --mlm");
      check_fits_model(d, o.split, mc.vocab_size, mc.type_vocab, mc.max_positions, "masked LM " + lm->file);
      lm->model->eval();
      meta.update({{"mlm", o.mlm}, {"mlm_fingerprint", lm->fingerprint}, {"top_k", o.top_k}});
      spdlog::info("augment: {} proposes the top {} pieces at each masked position", lm->file, o.top_k);
    }
    meta["share"] = o.share;
    split.scan([&](const DataSplit& block, std::int64_t) {
      augment_text_block(o, block, v, lm ? lm->model.get() : nullptr, tok.mask_id(), w, counts);
    });
    meta.update(
        {{"replaceable", counts.replaceable}, {"replaced", counts.replaced}, {"from_model", counts.from_model}});
  }
  w.set_attr("augment", meta.dump());
  const auto hash = w.finish();
  if (d.task == "features")
    spdlog::info("wrote {}: {} {} copies of {} rows of {} (seed {}); content hash {}", o.out, o.copies,
                 o.mixup > 0 ? "mixup" : "noise", split.n, o.input, o.seed, hash);
  else
    spdlog::info(
        "wrote {}: {} copies of {} rows of {}:{}, {} of {} word pieces replaced ({:.4f}; {} from the masked LM), "
        "seed {}; content hash {}",
        o.out, o.copies, split.n, o.input, o.split, counts.replaced, counts.replaceable,
        counts.replaceable > 0 ? static_cast<double>(counts.replaced) / counts.replaceable : 0.0, counts.from_model,
        o.seed, hash);
}

}  // namespace

void cmd_augment(Communicator& comm, const AugmentOptions& o) {
  run_on_rank0(comm, [&] { augment(o); });
}

}  // namespace distill
