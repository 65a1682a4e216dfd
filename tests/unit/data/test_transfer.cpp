// Transfer sets: unlabeled rows (Note [unlabeled rows]), mixes (Note [mixed transfer sets]),
// augmentation draws (Note [augmentation]), the hard-label loss over labeled rows and the sampler
// over a subset of rows (distill curve).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "distill/data/augment.h"
#include "distill/data/dataset.h"
#include "distill/data/mix.h"
#include "distill/data/sampler.h"
#include "distill/data/synthetic.h"
#include "distill/io/h5.h"
#include "distill/kd/loss.h"
#include "test_util.h"

using namespace distill;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

SyntheticOptions small(std::uint64_t seed) {
  SyntheticOptions o;
  o.train = 300;
  o.dev = 40;
  o.test = 30;
  o.seq = 12;
  o.vocab_size = 200;
  o.seed = seed;
  return o;
}

// The synthetic data set with every label replaced by kIgnoreLabel in every split.
Dataset unlabeled(const SyntheticOptions& o) {
  auto d = make_synthetic(o);
  for (auto& [name, s] : d.splits)
    for (auto& y : s.labels) y = kIgnoreLabel;
  return d;
}

}  // namespace

TEST(Transfer, UnlabeledRowsAreRecordedAndChecked) {
  const auto dir = test::temp_dir("unlabeled");
  auto d = make_synthetic(small(3));
  auto& tr = d.splits["train"];
  for (std::size_t i = 0; i < tr.labels.size(); i += 3) tr.labels[i] = kIgnoreLabel;  // 100 of 300 unlabeled
  write_dataset(dir + "/d.h5", d);
  const auto back = read_dataset(dir + "/d.h5");
  EXPECT_EQ(back.split("train").labeled_rows(), 200);
  EXPECT_EQ(back.split("dev").labeled_rows(), 40);
  EXPECT_EQ(tr.labeled_rows(), 200);  // counted in memory
  // Any other negative label is still refused, naming the file and the example.
  tr.labels[1] = -1;
  const auto e = test::error_of([&] { write_dataset(dir + "/bad.h5", d); });
  EXPECT_TRUE(has(e, "bad.h5") && has(e, "has label -1") && has(e, "-100: unlabeled")) << e;
}

TEST(Transfer, HardLossCountsLabeledRowsOnly) {
  torch::manual_seed(0);
  auto z = torch::randn({6, 3}, torch::kFloat64);
  auto y = torch::tensor({0, kIgnoreLabel, 2, kIgnoreLabel, 1, 1}, torch::kInt64);
  auto keep = torch::tensor({0, 2, 4, 5}, torch::kInt64);
  // Summed over the 4 labeled rows, divided by all 6: unlabeled rows add 0.
  auto want = torch::nn::functional::cross_entropy(z.index_select(0, keep), y.index_select(0, keep)) * 4.0 / 6.0;
  EXPECT_NEAR(hard_ce(z, y).item<double>(), want.item<double>(), 1e-12);
  // All labeled: the usual mean.
  auto all = torch::tensor({0, 1, 2, 0, 1, 1}, torch::kInt64);
  EXPECT_NEAR(hard_ce(z, all).item<double>(), torch::nn::functional::cross_entropy(z, all).item<double>(), 1e-12);
  // No labeled row: 0 with a zero gradient, not NaN.
  auto zz = z.clone().requires_grad_(true);
  auto none = hard_ce(zz, torch::full({6}, kIgnoreLabel, torch::kInt64));
  none.backward();
  EXPECT_EQ(none.item<double>(), 0.0);
  EXPECT_EQ(zz.grad().abs().sum().item<double>(), 0.0);
}

TEST(Transfer, MixTakesWeightedCopiesAndTracesIds) {
  const auto dir = test::temp_dir("mix");
  write_dataset(dir + "/a.h5", make_synthetic(small(3)));
  write_dataset(dir + "/u.h5", unlabeled(small(4)));
  MixOptions o;
  o.sources = {parse_mix_source(dir + "/a.h5:2"), parse_mix_source(dir + "/u.h5:train:0.5")};
  EXPECT_EQ(o.sources[1].split, "train");
  EXPECT_EQ(o.sources[1].weight, 0.5);
  const auto rep = write_mix(o, dir + "/m.h5");
  EXPECT_EQ(rep.rows, (std::vector<std::int64_t>{600, 150}));
  EXPECT_EQ(rep.train, 750);
  EXPECT_EQ(rep.labeled, 600);
  const auto m = read_dataset(dir + "/m.h5");
  EXPECT_EQ(m.split("dev").n, 40);  // dev and test of the first source
  EXPECT_EQ(m.split("test").n, 30);
  // Every train row traces back: id = id_offset + copy * id_span + source id, same tokens.
  auto f = h5::File::open(dir + "/m.h5");
  const auto mix = nlohmann::json::parse(f.attr_string("/", "mix"));
  const auto a = read_dataset(dir + "/a.h5").split("train").all();
  const auto u = read_dataset(dir + "/u.h5").split("train").all();
  const auto rows = m.split("train").all();
  std::map<std::int64_t, std::int64_t> row_of_a, row_of_u;
  for (std::int64_t i = 0; i < a.n; ++i) row_of_a[a.example_id[i]] = i;
  for (std::int64_t i = 0; i < u.n; ++i) row_of_u[u.example_id[i]] = i;
  std::map<std::int64_t, int> copies_of_a;
  std::set<std::int64_t> from_u;
  for (std::int64_t i = 0; i < rows.n; ++i) {
    const auto id = rows.example_id[i];
    const auto& s0 = mix["sources"][0];
    const auto& s1 = mix["sources"][1];
    const bool first = id < s1["id_offset"].get<std::int64_t>();
    const auto& s = first ? s0 : s1;
    const auto rel = id - s["id_offset"].get<std::int64_t>();
    const auto src = rel % s["id_span"].get<std::int64_t>();
    const auto& sp = first ? a : u;
    const auto r = (first ? row_of_a : row_of_u).at(src);
    for (std::int64_t t = 0; t < rows.seq; ++t)
      ASSERT_EQ(rows.input_ids[i * rows.seq + t], sp.input_ids[r * sp.seq + t]);
    ASSERT_EQ(rows.labels[i], sp.labels[r]);
    if (first)
      ++copies_of_a[src];
    else
      from_u.insert(src);
  }
  EXPECT_EQ(copies_of_a.size(), 300u);
  for (const auto& [id, k] : copies_of_a) EXPECT_EQ(k, 2);
  EXPECT_EQ(from_u.size(), 150u);
  // Deterministic: the same mix twice has the same content hash; another seed takes other rows.
  EXPECT_EQ(write_mix(o, dir + "/m2.h5").content_hash, rep.content_hash);
  o.seed = 2;
  EXPECT_NE(write_mix(o, dir + "/m3.h5").content_hash, rep.content_hash);
}

TEST(Transfer, MixRefusesSourcesThatDoNotFit) {
  const auto dir = test::temp_dir("mixbad");
  write_dataset(dir + "/a.h5", make_synthetic(small(3)));
  auto o2 = small(4);
  o2.seq = 10;
  write_dataset(dir + "/b.h5", make_synthetic(o2));
  auto o3 = small(5);
  o3.num_labels = 3;
  write_dataset(dir + "/c.h5", make_synthetic(o3));
  MixOptions o;
  o.sources = {parse_mix_source(dir + "/a.h5"), parse_mix_source(dir + "/b.h5")};
  auto e = test::error_of([&] { write_mix(o, dir + "/m.h5"); });
  EXPECT_TRUE(has(e, "b.h5") && has(e, "a.h5") && has(e, "rows of 12 vs 10 tokens")) << e;
  o.sources[1] = parse_mix_source(dir + "/c.h5");
  e = test::error_of([&] { write_mix(o, dir + "/m.h5"); });
  EXPECT_TRUE(has(e, "label names")) << e;
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.h5"));
  e = test::error_of([&] { parse_mix_source(dir + "/a.h5:-1"); });
  EXPECT_TRUE(has(e, "expected a number > 0")) << e;
}

TEST(Transfer, ReplacedPositionsTakeTheStatedShareReproducibly) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]"};
  for (int i = 0; i < 40; ++i) vocab.push_back("w" + std::to_string(i));
  for (int i = 0; i < 20; ++i) vocab.push_back("##s" + std::to_string(i));
  const WordPieceTokenizer tok(vocab, {}, "test vocab");
  const auto v = ReplacementVocab::from(tok);
  EXPECT_EQ(v.initial.size(), 40u);
  EXPECT_EQ(v.continuation.size(), 20u);
  // [CLS] w w ##s w ... [SEP] [PAD]: 20 replaceable pieces.
  std::vector<std::int32_t> ids = {2}, mask = {1};
  for (int i = 0; i < 20; ++i) {
    ids.push_back(i % 4 == 3 ? 46 + i / 4 : 6 + i);
    mask.push_back(1);
  }
  ids.insert(ids.end(), {3, 0, 0});
  mask.insert(mask.end(), {1, 0, 0});
  for (double share : {0.01, 0.15, 0.3, 0.5, 1.0}) {
    auto r1 = augment_rng(7, 42, 1), r2 = augment_rng(7, 42, 1), r3 = augment_rng(7, 42, 2);
    const auto p = replaced_positions(ids.data(), mask.data(), 23, v, share, r1);
    EXPECT_EQ(static_cast<long>(p.size()), std::max(1L, std::lround(share * 20))) << share;
    EXPECT_EQ(p, replaced_positions(ids.data(), mask.data(), 23, v, share, r2));
    for (auto q : p) EXPECT_TRUE(q >= 1 && q <= 20) << "special or padding chosen: " << q;
    if (share < 1 && share > 0.1) EXPECT_NE(p, replaced_positions(ids.data(), mask.data(), 23, v, share, r3));
  }
  // A replacement keeps the piece's kind and differs from it; model candidates of the wrong kind,
  // specials and the original are skipped.
  SplitMix64 rng(1);
  for (int i = 0; i < 200; ++i) {
    const auto c = pick_replacement(50, {50, 7, 2}, v, rng);  // continuation: no candidate fits
    EXPECT_EQ(v.kind[c], ReplacementVocab::kContinuation);
    EXPECT_NE(c, 50);
  }
  EXPECT_EQ(pick_replacement(6, {6, 2, 51, 9}, v, rng), 9);  // the only word start among them
}

TEST(Transfer, NoiseAndBetaDraws) {
  SplitMix64 rng(3);
  double s = 0, s2 = 0, b = 0, b2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = normal(rng), y = beta(rng, 0.4);
    s += x;
    s2 += x * x;
    b += y;
    b2 += y * y;
    ASSERT_TRUE(y >= 0 && y <= 1);
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
  // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
  EXPECT_NEAR(b / n, 0.5, 0.005);
  EXPECT_NEAR(b2 / n - (b / n) * (b / n), 1.0 / (4 * (2 * 0.4 + 1)), 0.003);
}

TEST(Transfer, SamplerOverASubsetOfRows) {
  const std::vector<std::int64_t> rows = {17, 3, 99, 42, 5};
  DistributedSampler s(5, 2, 0, 1, 9);
  s.set_rows(rows);
  DistributedSampler plain(5, 2, 0, 1, 9);
  Cursor c;
  std::multiset<std::int64_t> seen;
  for (int step = 0; step < 3; ++step, c = s.advance(c)) {
    const auto got = s.indices(c), pos = plain.indices(c);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], rows[pos[i]]);
    seen.insert(got.begin(), got.end());
  }
  for (auto r : rows) EXPECT_GE(seen.count(r), 1u);
  DistributedSampler full(5, 10, 1, 2, 9);  // full batch: rank 1 takes positions 2..4
  full.set_rows(rows);
  EXPECT_EQ(full.indices({}), (std::vector<std::int64_t>{99, 42, 5}));
}
