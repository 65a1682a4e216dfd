// Layer maps (literal expectations and every error) and intermediate losses (closed forms and
// finite-difference gradients, projections included; MiniLMv2 relations against PyTorch).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "distill/kd/intermediate.h"
#include "test_util.h"

namespace distill {
namespace {

std::vector<long> teachers(const LayerMap& m) {
  std::vector<long> t;
  for (const auto& p : m.pairs) t.push_back(p.second);
  return t;
}

TEST(LayerMap, UniformLastSkipAndPairs) {
  EXPECT_EQ(teachers(parse_layer_map("uniform", 6, 12, "hidden", "m")), (std::vector<long>{2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(teachers(parse_layer_map("uniform", 6, 24, "hidden", "m")), (std::vector<long>{4, 8, 12, 16, 20, 24}));
  EXPECT_EQ(teachers(parse_layer_map("uniform", 4, 12, "attention", "m")), (std::vector<long>{3, 6, 9, 12}));
  EXPECT_EQ(teachers(parse_layer_map("last", 4, 12, "hidden", "m")), (std::vector<long>{9, 10, 11, 12}));
  auto skip = parse_layer_map("skip:2,4,6", 3, 6, "hidden", "m");
  EXPECT_EQ(skip.pairs, (std::vector<std::pair<long, long>>{{1, 2}, {2, 4}, {3, 6}}));
  auto pairs = parse_layer_map("2:12, 0:0,1:6", 2, 12, "hidden", "m");
  EXPECT_EQ(pairs.pairs, (std::vector<std::pair<long, long>>{{0, 0}, {1, 6}, {2, 12}}));
  EXPECT_TRUE(parse_layer_map("", 2, 4, "hidden", "m").empty());
  EXPECT_TRUE(parse_layer_map("none", 2, 4, "attention", "m").empty());
  EXPECT_EQ(teacher_layers_of(parse_layer_map("1:4,2:4", 2, 4, "hidden", "m")), (std::vector<long>{4}));
}

TEST(LayerMap, EachInvalidMapSaysWhy) {
  auto err = [](const std::string& spec, long M, long N, const std::string& kind) {
    return test::error_of([&] { parse_layer_map(spec, M, N, kind, "distill.hidden_map"); });
  };
  EXPECT_NE(err("uniform", 4, 6, "hidden").find("teacher's 6 layers to be a multiple of the student's 4"),
            std::string::npos);
  EXPECT_NE(err("skip:2,4", 3, 6, "hidden").find("lists 2 teacher layers for a student of 3 layers"),
            std::string::npos);
  EXPECT_NE(err("1:13", 2, 12, "hidden").find("pair 1:13 names teacher hidden 13, valid are 0..12"), std::string::npos);
  EXPECT_NE(err("3:1", 2, 12, "hidden").find("pair 3:1 names student hidden 3, valid are 0..2"), std::string::npos);
  EXPECT_NE(err("0:0", 2, 12, "attention").find("names student attention 0, valid are 1..2"), std::string::npos);
  EXPECT_NE(err("1:2,1:4", 2, 12, "hidden").find("student hidden 1 appears twice"), std::string::npos);
  EXPECT_NE(err("1-2", 2, 12, "hidden").find("neither uniform, last, skip"), std::string::npos);
  EXPECT_NE(err("skip:a,b", 2, 12, "hidden").find("'a' is not a layer index"), std::string::npos);
  EXPECT_NE(err("last", 6, 4, "hidden").find("the student has 6 layers, the teacher only 4"), std::string::npos);
}

auto kD = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor mask_2x4() { return torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}}, torch::kInt64); }

// Rows that are probability distributions over the real keys of each example.
torch::Tensor probs(int heads, std::uint64_t seed) {
  torch::manual_seed(seed);
  auto z = torch::randn({2, heads, 4, 4}, kD);
  auto key = mask_2x4().to(torch::kFloat64).unsqueeze(1).unsqueeze(2);
  return torch::softmax(z + (1 - key) * -1e30, -1);
}

TEST(LayerLoss, ClosedForms) {
  auto m = mask_2x4();
  auto s = torch::zeros({2, 4, 3}, kD), t = torch::ones({2, 4, 3}, kD);
  t[1][3] = 100;  // a padded token: ignored
  EXPECT_DOUBLE_EQ(hidden_mse(s, t, m).item<double>(), 1.0);
  auto a = torch::ones({2, 4, 3}, kD), b = -torch::ones({2, 4, 3}, kD);
  EXPECT_NEAR(hidden_cosine(a, b, m).item<double>(), 2.0, 1e-12);
  auto p = probs(2, 1);
  EXPECT_NEAR(attention_kl(p, p, m).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(attention_mse(p, p, m).item<double>(), 0.0, 1e-12);
  // Uniform teacher rows vs one-hot-ish student rows on example 0: KL = log(4) - ... computed by hand.
  auto u = torch::full({1, 1, 1, 4}, 0.25, kD);
  auto q = torch::tensor({0.7, 0.1, 0.1, 0.1}, kD).reshape({1, 1, 1, 4});
  const double want = 0.25 * (std::log(0.25 / 0.7) + 3 * std::log(0.25 / 0.1));
  EXPECT_NEAR(attention_kl(q, u, torch::ones({1, 1}, torch::kInt64)).item<double>(), want, 1e-12);
  EXPECT_TRUE(std::isfinite(attention_kl(probs(2, 2), probs(2, 3), m).item<double>()));
}

// Central differences of f at x against autograd, element by element.
void check_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f, torch::Tensor x, const std::string& what) {
  x = x.detach().clone().set_requires_grad(true);
  auto g = torch::autograd::grad({f(x)}, {x})[0];
  auto flat = x.detach().reshape(-1);
  const double h = 1e-6;
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    auto xp = flat.clone(), xm = flat.clone();
    xp[i] += h;
    xm[i] -= h;
    const double num = (f(xp.view_as(x)).item<double>() - f(xm.view_as(x)).item<double>()) / (2 * h);
    ASSERT_NEAR(g.reshape(-1)[i].item<double>(), num, 1e-6 * std::max(1.0, std::abs(num))) << what << " index " << i;
  }
}

TEST(LayerLoss, FiniteDifferenceGradients) {
  torch::manual_seed(5);
  auto m = mask_2x4();
  auto t = torch::randn({2, 4, 3}, kD);
  check_grad([&](const torch::Tensor& s) { return hidden_mse(s, t, m); }, torch::randn({2, 4, 3}, kD), "hidden mse");
  check_grad([&](const torch::Tensor& s) { return hidden_cosine(s, t, m); }, torch::randn({2, 4, 3}, kD), "cosine");
  auto pt = probs(2, 7);
  auto logits = torch::randn({2, 2, 4, 4}, kD);
  auto key = m.to(torch::kFloat64).unsqueeze(1).unsqueeze(2);
  auto as_probs = [&](const torch::Tensor& z) { return torch::softmax(z + (1 - key) * -1e30, -1); };
  check_grad([&](const torch::Tensor& z) { return attention_kl(as_probs(z), pt, m); }, logits, "attention kl");
  check_grad([&](const torch::Tensor& z) { return attention_mse(as_probs(z), pt, m); }, logits, "attention mse");
}

ModelConfig cfg(long hidden, long layers, long heads) {
  ModelConfig c;
  c.hidden = hidden;
  c.layers = layers;
  c.heads = heads;
  return c;
}

TEST(LayerLoss, ProjectionsHeadsAndTheirGradients) {
  LayerLossOptions o;
  o.hidden_map = "0:0,1:2";
  o.attention_map = "uniform";
  EXPECT_NE(
      test::error_of([&] { LayerLoss(o, cfg(4, 1, 2), cfg(6, 2, 3)); }).find("set distill.head_mismatch: average"),
      std::string::npos);
  o.attention_map = "";
  LayerLoss loss(o, cfg(4, 1, 2), cfg(6, 2, 3));
  loss->to(torch::kFloat64);
  auto names = loss->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias"}));
  torch::manual_seed(3);
  ModelOutput s, t;
  for (int i = 0; i < 2; ++i) s.hidden.push_back(torch::randn({2, 4, 4}, kD));
  for (int i = 0; i < 3; ++i) t.hidden.push_back(torch::randn({2, 4, 6}, kD));
  auto m = mask_2x4();
  auto w = loss->named_parameters()["hidden.1.weight"];
  // d(loss)/d(projection weight) by finite differences on the weight itself.
  auto f = [&](const torch::Tensor& wx) {
    auto hs = torch::matmul(s.hidden[1], wx.t()) + loss->named_parameters()["hidden.1.bias"];
    return hidden_mse(hs, t.hidden[2], m);
  };
  check_grad(f, w.detach(), "projection weight");
  auto r = loss->forward(s, t, m);
  auto g = torch::autograd::grad({r.hidden}, {w})[0];
  auto ref = torch::autograd::grad({f(w)}, {w})[0];
  EXPECT_TRUE(torch::allclose(g, ref, 1e-10, 1e-12));
  // Head means when counts differ.
  o.hidden_map = "";
  o.attention_map = "1:2";
  o.head_mismatch = HeadMismatch::kAverage;
  LayerLoss avg(o, cfg(4, 1, 2), cfg(6, 2, 3));
  ModelOutput sa, ta;
  sa.attentions = {probs(2, 11)};
  ta.attentions = {probs(3, 12), probs(3, 13)};
  const double want = attention_kl(sa.attentions[0].mean(1, true), ta.attentions[1].mean(1, true), m).item<double>();
  EXPECT_NEAR(avg->forward(sa, ta, m).attention.item<double>(), want, 1e-12);
}

torch::Tensor from_json(const nlohmann::json& j) {
  std::vector<double> flat;
  std::vector<std::int64_t> shape;
  std::function<void(const nlohmann::json&, std::size_t)> walk = [&](const nlohmann::json& x, std::size_t depth) {
    if (!x.is_array()) {
      flat.push_back(x.get<double>());
      return;
    }
    if (shape.size() <= depth) shape.push_back(static_cast<std::int64_t>(x.size()));
    for (const auto& e : x) walk(e, depth + 1);
  };
  walk(j, 0);
  return torch::tensor(flat, kD).view(shape);
}

// MiniLMv2 relations against PyTorch (tests/fixtures/relation_ref.json): values and gradients, with
// padding, for hidden sizes that differ between student and teacher.
TEST(LayerLoss, RelationMatchesPyTorchReference) {
  std::ifstream in(test::fixture("relation_ref.json"));
  const auto cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    const long heads = c["heads"].get<long>();
    auto s = from_json(c["student"]).requires_grad_(true);
    auto mask = from_json(c["mask"]).to(torch::kInt64);
    auto v = relation_kl(s, from_json(c["teacher"]), mask, heads);
    EXPECT_NEAR(v.item<double>(), c["value"].get<double>(), 1e-12) << heads << " heads";
    v.backward();
    EXPECT_LE((s.grad() - from_json(c["grad"])).abs().max().item<double>(), 1e-12) << heads << " heads";
  }
}

TEST(LayerLoss, RelationClosedFormsAndHeadCounts) {
  torch::manual_seed(9);
  auto m = mask_2x4();
  auto x = torch::randn({2, 4, 6}, kD);
  EXPECT_NEAR(relation_kl(x, x, m, 3).item<double>(), 0.0, 1e-14);
  // A teacher whose relation is uniform over real keys (all-zero vectors): KL(u || s) = mean of
  // -log(n) - mean over keys of log s, per row.
  auto zero = torch::zeros({2, 4, 4}, kD);
  auto lr = [&](const torch::Tensor& h, long heads) {
    const long d = h.size(2) / heads;
    auto v = h.view({2, 4, heads, d}).transpose(1, 2);
    auto key = m.to(torch::kBool).view({2, 1, 1, 4});
    return torch::log_softmax((torch::matmul(v, v.transpose(-1, -2)) / std::sqrt(double(d))).masked_fill(~key, -1e30), -1);
  };
  auto ls = lr(x, 2);
  double sum = 0, rows = 0;
  for (int b = 0; b < 2; ++b) {
    const long n = m[b].sum().item<long>();
    for (int h = 0; h < 2; ++h)
      for (int q = 0; q < n; ++q) {
        sum += -std::log(double(n)) - ls[b][h][q].slice(0, 0, n).mean().item<double>();
        rows += 1;
      }
  }
  EXPECT_NEAR(relation_kl(x, zero, m, 2).item<double>(), sum / rows, 1e-12);
  check_grad([&](const torch::Tensor& s) { return relation_kl(s, x, m, 2); }, torch::randn({2, 4, 4}, kD),
             "relation kl");
  // Any head counts: the relation heads must divide both widths.
  LayerLossOptions o;
  o.attention_map = "1:2";
  o.attention_loss = AttentionLoss::kRelation;
  o.relation_heads = 2;
  LayerLoss loss(o, cfg(4, 1, 2), cfg(6, 2, 3));  // 2 heads against 3
  ModelOutput s, t;
  s.qkv = {{torch::randn({2, 4, 4}, kD), torch::randn({2, 4, 4}, kD), torch::randn({2, 4, 4}, kD)}};
  for (int i = 0; i < 2; ++i)
    t.qkv.push_back({torch::randn({2, 4, 6}, kD), torch::randn({2, 4, 6}, kD), torch::randn({2, 4, 6}, kD)});
  const double want = relation_kl(s.qkv[0].query, t.qkv[1].query, m, 2).item<double>() +
                      relation_kl(s.qkv[0].key, t.qkv[1].key, m, 2).item<double>() +
                      relation_kl(s.qkv[0].value, t.qkv[1].value, m, 2).item<double>();
  EXPECT_NEAR(loss->forward(s, t, m).attention.item<double>(), want, 1e-12);
  o.relation_heads = 0;  // the teacher's 3 heads do not divide the student's 4
  EXPECT_NE(test::error_of([&] { LayerLoss(o, cfg(4, 1, 2), cfg(6, 2, 3)); })
                .find("distill.relation_heads = 3 must divide the student's hidden size 4 and the teacher's 6"),
            std::string::npos);
  ModelOutput no_qkv;
  no_qkv.attentions = {probs(3, 1), probs(3, 2)};
  EXPECT_NE(test::error_of([&] { loss->forward(s, no_qkv, m); }).find("a BERT teacher run online gives them"),
            std::string::npos);
}

}  // namespace
}  // namespace distill
