// Vector students, the masked-LM head, SGD, the sparse top-k loss, and the feature and masked-LM
// data sets: closed forms, finite differences and literal expectations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "distill/data/prepare.h"
#include "distill/kd/loss.h"
#include "distill/model/hf.h"
#include "distill/model/load.h"
#include "distill/model/vector.h"
#include "distill/store/sizing.h"
#include "distill/train/optim.h"
#include "test_util.h"

namespace distill {
namespace {

ModelConfig vector_config(ModelKind kind, long depth) {
  ModelConfig c;
  c.kind = kind;
  c.input_dim = 5;
  c.width = 7;
  c.depth = depth;
  c.num_labels = 3;
  c.dropout = 0;
  return c;
}

TEST(VectorNet, DeepLinearIsTheProductOfItsMatricesWithoutBiases) {
  torch::manual_seed(1);
  auto m = make_network(vector_config(ModelKind::kDeepLinear, 3));
  std::vector<std::string> names;
  for (const auto& p : m->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"layers.0.weight", "layers.1.weight", "layers.2.weight"}));
  auto params = m->named_parameters();
  auto w =
      torch::matmul(params["layers.2.weight"], torch::matmul(params["layers.1.weight"], params["layers.0.weight"]));
  EXPECT_EQ(w.sizes(), (std::vector<std::int64_t>{3, 5}));
  ModelInputs in;
  in.features = torch::randn({4, 5});
  auto out = m->forward(in);
  EXPECT_TRUE(torch::allclose(out.logits, torch::matmul(in.features, w.t()), 1e-5, 1e-6));
  EXPECT_NE(test::error_of([&] { m->forward(ModelInputs{}); }).find("feature vectors of width 5"), std::string::npos);
}

TEST(VectorNet, InitScaleIsTheStdOfEveryWeight) {
  torch::manual_seed(2);
  auto c = vector_config(ModelKind::kDeepLinear, 2);
  c.input_dim = 400;
  c.width = 500;
  c.init_scale = 0.01;
  auto m = make_network(c);
  EXPECT_NEAR(m->named_parameters()["layers.0.weight"].std().item<double>(), 0.01, 0.0005);
  c.init_scale = 0;  // 1/sqrt(fan_in)
  auto d = make_network(c);
  EXPECT_NEAR(d->named_parameters()["layers.1.weight"].std().item<double>(), 1.0 / std::sqrt(500.0), 0.002);
}

TEST(VectorNet, MlpHasBiasesAndRelu) {
  torch::manual_seed(3);
  auto m = make_network(vector_config(ModelKind::kMlp, 2));
  m->eval();
  auto p = m->named_parameters();
  EXPECT_TRUE(p.contains("layers.0.bias") && p.contains("layers.1.bias"));
  ModelInputs in;
  in.features = torch::randn({2, 5});
  auto h = torch::relu(torch::matmul(in.features, p["layers.0.weight"].t()) + p["layers.0.bias"]);
  auto z = torch::matmul(h, p["layers.1.weight"].t()) + p["layers.1.bias"];
  EXPECT_TRUE(torch::allclose(m->forward(in).logits, z, 1e-5, 1e-6));
}

TEST(MaskedLM, LogitsAtMaskedPositionsUseTheTiedEmbeddings) {
  torch::manual_seed(4);
  ModelConfig c;
  c.kind = ModelKind::kBertMlm;
  c.vocab_size = 50;
  c.hidden = 16;
  c.heads = 2;
  c.intermediate = 32;
  c.layers = 1;
  c.max_positions = 8;
  c.dropout = c.attention_dropout = 0;
  auto m = make_network(c);
  auto names = m->named_parameters();
  EXPECT_TRUE(names.contains("cls.predictions.transform.dense.weight"));
  EXPECT_TRUE(names.contains("cls.predictions.transform.LayerNorm.weight"));
  EXPECT_TRUE(names.contains("cls.predictions.bias"));
  EXPECT_FALSE(names.contains("bert.pooler.dense.weight"));
  ModelInputs in{torch::randint(0, 50, {2, 6}), torch::ones({2, 6}, torch::kInt64),
                 torch::zeros({2, 6}, torch::kInt64)};
  in.predict_mask = torch::zeros({2, 6}, torch::kBool);
  in.predict_mask[0][1] = true;
  in.predict_mask[1][4] = true;
  in.predict_mask[1][5] = true;
  auto masked = m->forward(in).logits;
  EXPECT_EQ(masked.sizes(), (std::vector<std::int64_t>{3, 50}));
  ModelInputs all = in;
  all.predict_mask = torch::Tensor();
  auto dense = m->forward(all).logits.view({2, 6, 50});
  EXPECT_TRUE(torch::allclose(masked[2], dense[1][5], 1e-5, 1e-6));
  // Tied decoder: the word embeddings get gradient from the output layer.
  masked.sum().backward();
  EXPECT_GT(names["bert.embeddings.word_embeddings.weight"].grad().abs().sum().item<double>(), 0);
}

TEST(MaskedLM, HuggingFaceDirectoryRoundTrip) {
  torch::manual_seed(8);
  ModelConfig c;
  c.kind = ModelKind::kBertMlm;
  c.vocab_size = 40;
  c.hidden = 8;
  c.heads = 2;
  c.intermediate = 16;
  c.layers = 1;
  c.max_positions = 8;
  auto m = make_network(c);
  m->eval();
  const auto dir = test::temp_dir("hfmlm") + "/mlm";
  export_hf_dir(dir, *m, {}, "");
  auto cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  EXPECT_EQ(cfg.at("architectures")[0], "BertForMaskedLM");
  EXPECT_FALSE(cfg.contains("id2label"));
  auto back = load_model(dir);  // a teacher: BertForMaskedLM layout -> masked LM
  EXPECT_EQ(back.model->config().kind, ModelKind::kBertMlm);
  back.model->eval();
  ModelInputs in{torch::randint(0, 40, {2, 5}), torch::ones({2, 5}, torch::kInt64),
                 torch::zeros({2, 5}, torch::kInt64)};
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(back.model->forward(in).logits, m->forward(in).logits));
  // As a classifier student's init the same directory gives an encoder (head freshly initialised).
  auto enc = load_model(dir, false, 3, ModelKind::kBert);
  EXPECT_EQ(enc.model->config().kind, ModelKind::kBert);
  EXPECT_EQ(enc.model->config().num_labels, 3);
}

TEST(Sgd, MatchesTheClosedFormWithMomentumAndDecay) {
  auto w = torch::tensor({1.0f, -2.0f}).requires_grad_(true);
  Sgd opt({{"w", w}}, 0.9, 0.1);
  const std::vector<std::vector<float>> grads = {{0.5f, 1.0f}, {-1.0f, 2.0f}};
  double w0[2] = {1.0, -2.0}, v[2] = {0, 0};
  for (std::size_t s = 0; s < grads.size(); ++s) {
    w.mutable_grad() = torch::tensor(grads[s]);
    opt.step(0.1);
    for (int i = 0; i < 2; ++i) {
      const double d = grads[s][i] + 0.1 * w0[i];
      v[i] = s == 0 ? d : 0.9 * v[i] + d;
      w0[i] -= 0.1 * v[i];
    }
  }
  EXPECT_NEAR(w[0].item<double>(), w0[0], 1e-6);
  EXPECT_NEAR(w[1].item<double>(), w0[1], 1e-6);
  // The state round-trips.
  auto w2 = torch::tensor({1.0f, -2.0f}).requires_grad_(true);
  Sgd again({{"w", w2}}, 0.9, 0.1);
  again.load_state(opt.state(), "test");
  w.mutable_grad() = torch::tensor({0.3f, 0.3f});
  w2.mutable_grad() = torch::tensor({0.3f, 0.3f});
  torch::NoGradGuard g;
  w2.copy_(w);
  opt.step(0.1);
  again.step(0.1);
  EXPECT_TRUE(torch::equal(w, w2));
}

TEST(TopK, EqualsTheDenseLossWhenKIsTheVocabulary) {
  torch::manual_seed(5);
  auto s = torch::randn({4, 12}, torch::kFloat64);
  auto t = torch::randn({4, 12}, torch::kFloat64) * 3;
  for (double T : {1.0, 2.0}) {
    auto [v, i] = (t).topk(12, -1);
    auto lse = (t / T).logsumexp(-1);
    EXPECT_NEAR(topk_soft_kl(s, v, i, lse, T).item<double>(), soft_kl(s, t, T).item<double>(), 1e-10);
    // Fewer tokens: coarser, so never above the dense KL, and the same as the explicit k+1-bin KL.
    auto [v3, i3] = t.topk(3, -1);
    const double sparse = topk_soft_kl(s, v3, i3, lse, T).item<double>();
    EXPECT_LE(sparse, soft_kl(s, t, T).item<double>() + 1e-12);
    auto p = torch::softmax(t / T, -1), q = torch::softmax(s / T, -1);
    auto pk = p.gather(1, i3), qk = q.gather(1, i3);
    auto pr = 1 - pk.sum(1), qr = 1 - qk.sum(1);
    auto kl = ((pk * (pk / qk).log()).sum(1) + pr * (pr / qr).log()).mean();
    EXPECT_NEAR(sparse, kl.item<double>(), 1e-10);
  }
}

TEST(TopK, GradientMatchesFiniteDifferences) {
  torch::manual_seed(6);
  auto s = torch::randn({3, 10}, torch::kFloat64).requires_grad_(true);
  auto t = torch::randn({3, 10}, torch::kFloat64) * 2;
  auto [v, i] = t.topk(4, -1);
  auto lse = (t / 1.5).logsumexp(-1);
  topk_soft_kl(s, v, i, lse, 1.5).backward();
  auto g = s.grad().clone();
  torch::NoGradGuard ng;
  const double h = 1e-6;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 10; ++c) {
      auto sp = s.detach().clone(), sm = s.detach().clone();
      sp[r][c] += h;
      sm[r][c] -= h;
      const double fd =
          (topk_soft_kl(sp, v, i, lse, 1.5).item<double>() - topk_soft_kl(sm, v, i, lse, 1.5).item<double>()) / (2 * h);
      EXPECT_NEAR(g[r][c].item<double>(), fd, 1e-7) << r << "," << c;
    }
}

TEST(TopK, DefaultKFitsThreeHundredBytesPerToken) {
  EXPECT_EQ(topk_bytes_per_token(64, true, true), 264);
  EXPECT_EQ(default_topk(true, true), 64);
  EXPECT_LE(topk_bytes_per_token(default_topk(true, false), true, false), 300);
  EXPECT_GT(topk_bytes_per_token(2 * default_topk(true, false), true, false), 300);
}

TEST(PrepareFeatures, CsvWithHeaderAndLabelColumn) {
  const auto dir = test::temp_dir("features");
  const auto csv = dir + "/x.csv";
  std::ofstream(csv) << "a,b,label\n1,2,7\n3,4,9\n5,6,7\n7,8,9\n9,10,7\n11,12,9\n13,14,7\n15,16,9\n17,18,7\n19,20,9\n";
  PrepareOptions o;
  o.input = csv;
  o.features = true;
  o.dev_fraction = 0.2;
  o.test_fraction = 0;
  auto d = prepare_features(o);
  EXPECT_EQ(d.task, "features");
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"7", "9"}));
  const auto& tr = d.split("train");
  EXPECT_EQ(tr.dim, 2);
  EXPECT_EQ(tr.n + d.split("dev").n, 10);
  for (std::int64_t i = 0; i < tr.n; ++i) {
    // Row k holds (2k + 1, 2k + 2) with label 7 for even k: the label follows the row.
    const auto k = static_cast<long>((tr.features[i * 2] - 1) / 2);
    EXPECT_EQ(tr.features[i * 2 + 1], tr.features[i * 2] + 1);
    EXPECT_EQ(tr.labels[i], k % 2);
    EXPECT_EQ(tr.example_id[i], k);
  }
  o.standardize = true;
  auto z = prepare_features(o);
  auto t = torch::from_blob(const_cast<float*>(z.split("train").features.data()), {z.split("train").n, 2});
  EXPECT_NEAR(t.mean(0)[0].item<double>(), 0.0, 1e-5);
  EXPECT_NEAR((t.pow(2).mean(0)[1]).item<double>(), 1.0, 1e-5);
  write_dataset(dir + "/d.h5", d);
  auto back = read_dataset(dir + "/d.h5");
  EXPECT_EQ(back.task, "features");
  EXPECT_EQ(back.split("train").all().features, d.split("train").features);
  std::ofstream(csv) << "1,2,0\n3,x,1\n";
  EXPECT_NE(test::error_of([&] { prepare_features(o); }).find("x.csv:2: column 2 is 'x', not a number"),
            std::string::npos);
}

TEST(PrepareFeatures, RowsOfASortedFileAreMixedWithinSplits) {
  // Streaming reads shards of consecutive rows in order: a file sorted by label must not give
  // single-label shards.
  const auto dir = test::temp_dir("sorted");
  {
    std::ofstream f(dir + "/s.csv");
    for (int i = 0; i < 200; ++i) f << i << "," << (i < 100 ? 0 : 1) << "\n";
  }
  PrepareOptions o;
  o.input = dir + "/s.csv";
  o.features = true;
  auto d = prepare_features(o);
  const auto& tr = d.split("train");
  std::int64_t ones = 0;
  for (std::int64_t i = 0; i < 40; ++i) ones += tr.labels[i];
  EXPECT_GT(ones, 8);
  EXPECT_LT(ones, 32);
  for (std::int64_t i = 0; i < tr.n; ++i) EXPECT_EQ(tr.features[i], static_cast<float>(tr.example_id[i]));
  EXPECT_EQ(dataset_content_hash(prepare_features(o)), dataset_content_hash(d));
}

TEST(PrepareMlm, MasksFifteenPercentDeterministically) {
  const char* vocab = std::getenv("DISTILL_VOCAB");
  if (!vocab || !std::filesystem::exists(vocab)) GTEST_SKIP() << "no DISTILL_VOCAB (run launch/fetch-vocab.sh)";
  const auto dir = test::temp_dir("mlm");
  {
    std::ofstream f(dir + "/t.tsv");
    f << "text\n";
    for (int i = 0; i < 400; ++i)
      f << "the quick brown fox number " << i << " jumps over the lazy dog near the river bank today\n";
  }
  PrepareOptions o;
  o.input = dir + "/t.tsv";
  o.vocab = vocab;
  o.mlm = true;
  o.max_length = 32;
  auto a = prepare_text(o), b = prepare_text(o);
  EXPECT_EQ(a.task, "mlm");
  EXPECT_EQ(dataset_content_hash(a), dataset_content_hash(b));
  std::int64_t real = 0, masked = 0, as_mask = 0, kept = 0;
  for (const auto& [name, s] : a.splits)
    for (std::int64_t r = 0; r < s.n; ++r) {
      std::int64_t row_masked = 0;
      for (std::int64_t j = 0; j < s.seq; ++j) {
        const auto k = r * s.seq + j;
        real += s.attention_mask[k] && j > 0 && s.input_ids[k] != 102;
        if (s.mlm_labels[k] == kIgnoreLabel) continue;
        ++masked;
        ++row_masked;
        as_mask += s.input_ids[k] == 103;  // [MASK]
        kept += s.input_ids[k] == s.mlm_labels[k];
      }
      EXPECT_GE(row_masked, 1);
    }
  EXPECT_NEAR(static_cast<double>(masked) / real, 0.15, 0.02);
  EXPECT_NEAR(static_cast<double>(as_mask) / masked, 0.8, 0.05);
  EXPECT_NEAR(static_cast<double>(kept) / masked, 0.1, 0.04);
  o.seed = 2;
  EXPECT_NE(dataset_content_hash(prepare_text(o)), dataset_content_hash(a));
}

}  // namespace
}  // namespace distill
