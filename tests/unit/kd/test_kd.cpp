#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "distill/kd/loss.h"
#include "test_util.h"

using namespace distill;

namespace {
torch::Tensor mat(const nlohmann::json& j) {
  std::vector<double> v;
  for (const auto& row : j)
    for (double x : row) v.push_back(x);
  return torch::tensor(v, torch::kFloat64).view({static_cast<long>(j.size()), -1});
}
}  // namespace

TEST(KdLoss, MatchesPyTorchReferenceValuesAndGradients) {
  std::ifstream in(test::fixture("kd_ref.json"));
  auto cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    KdOptions o{c["alpha"].get<double>(), c["beta"].get<double>(), c["T"].get<double>()};
    auto s = mat(c["student"]).requires_grad_(true);
    auto t = mat(c["teacher"]);
    auto y = torch::tensor(c["labels"].get<std::vector<std::int64_t>>());
    auto terms = kd_loss(s, t, y, o);
    EXPECT_NEAR(terms.hard_ce.item<double>(), c["ce"].get<double>(), 1e-12);
    EXPECT_NEAR(terms.soft_kl.item<double>(), c["soft"].get<double>(), 1e-12);
    EXPECT_NEAR(terms.total.item<double>(), c["total"].get<double>(), 1e-12);
    terms.total.backward();
    EXPECT_LE((s.grad() - mat(c["grad"])).abs().max().item<double>(), 1e-12) << "T = " << o.temperature;
  }
}

TEST(KdLoss, ClosedFormsAndFiniteDifferences) {
  // Identical logits: KL is zero at any temperature.
  auto z = torch::randn({6, 4}, torch::kFloat64);
  EXPECT_NEAR(soft_kl(z, z, 3.0).item<double>(), 0.0, 1e-14);
  // Two classes, one example: KL(p || q) by hand.
  auto s = torch::tensor({{0.0, 1.0}}, torch::kFloat64), t = torch::tensor({{2.0, 0.0}}, torch::kFloat64);
  const double q1 = 1 / (1 + std::exp(-1.0)), p0 = 1 / (1 + std::exp(-2.0));
  const double want = p0 * std::log(p0 / (1 - q1)) + (1 - p0) * std::log((1 - p0) / q1);
  EXPECT_NEAR(soft_kl(s, t, 1.0).item<double>(), want, 1e-14);
  // Central differences of the combined loss.
  KdOptions o{0.3, 0.7, 2.5};
  auto x = torch::randn({3, 5}, torch::kFloat64).requires_grad_(true);
  auto te = torch::randn({3, 5}, torch::kFloat64);
  auto y = torch::tensor({1, 0, 4});
  kd_loss(x, te, y, o).total.backward();
  const double h = 1e-6;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) {
      auto xp = x.detach().clone(), xm = x.detach().clone();
      xp[i][j] += h;
      xm[i][j] -= h;
      double fd = (kd_loss(xp, te, y, o).total.item<double>() - kd_loss(xm, te, y, o).total.item<double>()) / (2 * h);
      EXPECT_NEAR(x.grad()[i][j].item<double>(), fd, 1e-7) << i << "," << j;
    }
  // Without a teacher the loss is plain cross-entropy.
  auto plain = kd_loss(x.detach(), torch::Tensor(), y, o);
  EXPECT_FALSE(plain.soft_kl.defined());
  EXPECT_DOUBLE_EQ(plain.total.item<double>(), plain.hard_ce.item<double>());
}

// Every distill.soft_loss kind against PyTorch (tests/fixtures/soft_loss_ref.json): values and
// gradients, dense and from top-k teacher rows.
TEST(SoftLoss, EveryKindMatchesPyTorchReferenceValuesAndGradients) {
  std::ifstream in(test::fixture("soft_loss_ref.json"));
  auto cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 8u);
  const std::map<std::string, SoftLoss> kinds{
      {"kl", SoftLoss::kKl}, {"reverse_kl", SoftLoss::kReverseKl}, {"jsd", SoftLoss::kJsd}, {"mse", SoftLoss::kMse}};
  for (const auto& c : cases) {
    const auto kind = kinds.at(c["kind"].get<std::string>());
    const double T = c["T"].get<double>();
    EXPECT_STREQ(name(kind), c["kind"].get<std::string>().c_str());
    auto s = mat(c["student"]).requires_grad_(true);
    auto v = soft_loss(kind, s, mat(c["teacher"]), T);
    EXPECT_NEAR(v.item<double>(), c["value"].get<double>(), 1e-12) << name(kind) << " T " << T;
    v.backward();
    EXPECT_LE((s.grad() - mat(c["grad"])).abs().max().item<double>(), 1e-12) << name(kind) << " T " << T;
    if (!c.contains("k")) continue;
    auto s2 = mat(c["student"]).requires_grad_(true);
    std::vector<std::int64_t> flat;
    for (const auto& row : c["topk_indices"])
      for (auto x : row) flat.push_back(x.get<std::int64_t>());
    auto idx = torch::tensor(flat).view({4, -1});
    auto lse = torch::tensor(c["lse"].get<std::vector<double>>(), torch::kFloat64);
    auto tv = topk_soft_loss(kind, s2, mat(c["topk_values"]), idx, lse, T);
    EXPECT_NEAR(tv.item<double>(), c["topk_value"].get<double>(), 1e-12) << "top-k " << name(kind) << " T " << T;
    tv.backward();
    EXPECT_LE((s2.grad() - mat(c["topk_grad"])).abs().max().item<double>(), 1e-12) << "top-k " << name(kind);
  }
}

TEST(SoftLoss, ClosedFormsFiniteDifferencesAndTheTopKLimit) {
  auto z = torch::randn({3, 5}, torch::kFloat64);
  for (auto k : {SoftLoss::kKl, SoftLoss::kReverseKl, SoftLoss::kJsd, SoftLoss::kMse})
    EXPECT_NEAR(soft_loss(k, z, z, 2.0).item<double>(), 0.0, 1e-14) << name(k);
  // Two classes, T = 1: p_t = (0.5, 0.5), p_s = softmax(0, log 3) = (0.25, 0.75).
  auto s = torch::tensor({{0.0, std::log(3.0)}}, torch::kFloat64), t = torch::zeros({1, 2}, torch::kFloat64);
  const double rev = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  EXPECT_NEAR(soft_loss(SoftLoss::kReverseKl, s, t, 1.0).item<double>(), rev, 1e-14);
  const double m0 = 0.375, m1 = 0.625;
  const double jsd = 0.5 * (0.5 * std::log(0.5 / m0) + 0.5 * std::log(0.5 / m1)) +
                     0.5 * (0.25 * std::log(0.25 / m0) + 0.75 * std::log(0.75 / m1));
  EXPECT_NEAR(soft_loss(SoftLoss::kJsd, s, t, 1.0).item<double>(), jsd, 1e-14);
  EXPECT_NEAR(soft_loss(SoftLoss::kMse, s, t, 7.0).item<double>(), std::log(3.0) * std::log(3.0) / 2, 1e-14);
  // JSD is symmetric and at most T^2 ln 2; the others are not symmetric in general.
  auto a = torch::randn({4, 6}, torch::kFloat64) * 3, b = torch::randn({4, 6}, torch::kFloat64) * 3;
  EXPECT_NEAR(soft_loss(SoftLoss::kJsd, a, b, 2.0).item<double>(), soft_loss(SoftLoss::kJsd, b, a, 2.0).item<double>(),
              1e-12);
  EXPECT_LE(soft_loss(SoftLoss::kJsd, a * 50, b * 50, 2.0).item<double>(), 4 * std::log(2.0) + 1e-12);
  EXPECT_NEAR(soft_loss(SoftLoss::kReverseKl, a, b, 2.0).item<double>(),
              soft_loss(SoftLoss::kKl, b, a, 2.0).item<double>(), 1e-12);
  // Central finite differences of every kind's gradient.
  for (auto k : {SoftLoss::kReverseKl, SoftLoss::kJsd, SoftLoss::kMse}) {
    auto x = a.clone().requires_grad_(true);
    soft_loss(k, x, b, 1.5).backward();
    const double h = 1e-6;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 6; ++j) {
        auto xp = a.clone(), xm = a.clone();
        xp[i][j] += h;
        xm[i][j] -= h;
        const double fd = (soft_loss(k, xp, b, 1.5).item<double>() - soft_loss(k, xm, b, 1.5).item<double>()) / (2 * h);
        EXPECT_NEAR(x.grad()[i][j].item<double>(), fd, 1e-6) << name(k) << " " << i << "," << j;
      }
  }
  // k = V: the top-k bins are the classes themselves (the rest bin is empty).
  auto [vals, idx] = b.topk(6, -1);
  auto lse = (b / 2.0).logsumexp(-1);
  for (auto k : {SoftLoss::kKl, SoftLoss::kReverseKl, SoftLoss::kJsd})
    EXPECT_NEAR(topk_soft_loss(k, a, vals, idx, lse, 2.0).item<double>(), soft_loss(k, a, b, 2.0).item<double>(), 1e-9)
        << name(k);
  EXPECT_EQ(test::error_of([&] { topk_soft_loss(SoftLoss::kMse, a, vals, idx, lse, 2.0); }),
            "distill.soft_loss: mse needs every teacher logit; a top-k store keeps k of them (use kl, reverse_kl or "
            "jsd)");
  // float32 probabilities that underflow to 0 on both sides keep every gradient finite.
  for (auto k : {SoftLoss::kKl, SoftLoss::kReverseKl, SoftLoss::kJsd}) {
    auto x = torch::tensor({{0.0f, -300.0f, 5.0f}}).requires_grad_(true);
    auto y = torch::tensor({{0.0f, -280.0f, -400.0f}});
    auto v = soft_loss(k, x, y, 2.0);
    v.backward();
    EXPECT_TRUE(std::isfinite(v.item<double>())) << name(k);
    EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>()) << name(k) << " " << x.grad();
  }
  KdOptions o{0.0, 1.0, 2.0};
  o.soft_loss = SoftLoss::kJsd;
  EXPECT_NEAR(kd_loss(a, b, torch::zeros({4}, torch::kInt64), o).soft_kl.item<double>(),
              soft_loss(SoftLoss::kJsd, a, b, 2.0).item<double>(), 1e-15);
}

// Schedules of alpha, beta and T (KdOptions::at): closed forms at the ends and in between.
TEST(KdSchedule, LinearAndCosineBetweenStartAndEnd) {
  KdOptions o;
  o.alpha = 0.9;
  o.beta = 0.1;
  o.temperature = 4.0;
  EXPECT_FALSE(o.scheduled());
  o.alpha_end = 0.1;  // without a schedule kind nothing moves
  EXPECT_FALSE(o.scheduled());
  EXPECT_DOUBLE_EQ(o.at(50, 101).alpha, 0.9);
  o.weight_schedule = KdSchedule::kLinear;
  o.beta_end = 0.9;
  o.temperature_schedule = KdSchedule::kCosine;
  o.temperature_end = 1.0;
  ASSERT_TRUE(o.scheduled() && o.temperature_scheduled());
  const std::int64_t steps = 101;
  EXPECT_DOUBLE_EQ(o.at(0, steps).alpha, 0.9);
  EXPECT_DOUBLE_EQ(o.at(100, steps).alpha, 0.1);
  EXPECT_DOUBLE_EQ(o.at(100, steps).beta, 0.9);
  EXPECT_NEAR(o.at(25, steps).alpha, 0.9 - 0.8 * 0.25, 1e-15);
  EXPECT_NEAR(o.at(25, steps).beta, 0.1 + 0.8 * 0.25, 1e-15);
  // cosine: T(t) = 4 + (1 - 4) (1 - cos(pi t)) / 2
  EXPECT_DOUBLE_EQ(o.at(0, steps).temperature, 4.0);
  EXPECT_NEAR(o.at(50, steps).temperature, 2.5, 1e-12);
  EXPECT_NEAR(o.at(25, steps).temperature, 4.0 - 3.0 * (1 - std::cos(M_PI * 0.25)) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(o.at(100, steps).temperature, 1.0);
  EXPECT_DOUBLE_EQ(o.at(500, steps).temperature, 1.0);  // past the end: the end value
  // -1 keeps a value: beta_end unset stays at beta while alpha moves.
  o.beta_end = -1;
  EXPECT_DOUBLE_EQ(o.at(100, steps).beta, 0.1);
  // Nothing weighted at the last step is refused.
  o.alpha_end = 0;
  o.beta_end = 0;
  EXPECT_THROW(o.validate(), ConfigError);
}

// Note [several teachers]: the mixed target's softmax at T is the weighted mean of the teachers'
// softmax at T (for mse, the logits' weighted mean), and kd_loss on stacked logits is the soft loss
// against that mixture.
TEST(SeveralTeachers, MixtureOfSoftTargetsAndWeights) {
  torch::manual_seed(4);
  auto opt = torch::TensorOptions().dtype(torch::kFloat64);
  auto t = torch::randn({3, 5, 4}, opt) * 3;
  const std::vector<double> w = {0.5, 0.3, 0.2};
  for (double T : {1.0, 2.5}) {
    auto mixed = ensemble_logits(t, w, T, SoftLoss::kKl);
    auto want = 0.5 * torch::softmax(t[0] / T, -1) + 0.3 * torch::softmax(t[1] / T, -1) + 0.2 * torch::softmax(t[2] / T, -1);
    EXPECT_LE((torch::softmax(mixed / T, -1) - want).abs().max().item<double>(), 1e-14) << "T " << T;
  }
  auto mean = ensemble_logits(t, w, 2.0, SoftLoss::kMse);
  EXPECT_LE((mean - (0.5 * t[0] + 0.3 * t[1] + 0.2 * t[2])).abs().max().item<double>(), 1e-14);
  // One teacher: the mixture is that teacher (up to a shift per row, which softmax ignores).
  auto one = ensemble_logits(t.slice(0, 0, 1), {1.0}, 2.0, SoftLoss::kKl);
  EXPECT_LE((torch::softmax(one / 2.0, -1) - torch::softmax(t[0] / 2.0, -1)).abs().max().item<double>(), 1e-14);

  KdOptions o;
  o.alpha = 0.25;
  o.beta = 0.75;
  o.temperature = 2.0;
  o.teacher_weights = "5, 3,2";
  EXPECT_EQ(o.teacher_weight_values(3), w);
  auto s = torch::randn({5, 4}, opt);
  auto labels = torch::tensor({0, 1, 2, 3, 0}, torch::kInt64);
  const auto stacked = kd_loss(s, t, labels, o);
  const auto single = kd_loss(s, ensemble_logits(t, w, 2.0, SoftLoss::kKl), labels, o);
  EXPECT_NEAR(stacked.total.item<double>(), single.total.item<double>(), 1e-14);
  EXPECT_NEAR(stacked.soft_kl.item<double>(), 4.0 * soft_kl(s, ensemble_logits(t, w, 2.0, SoftLoss::kKl), 2.0).item<double>(), 1e-14);
  o.teacher_weights = "";
  EXPECT_EQ(o.teacher_weight_values(4), std::vector<double>(4, 0.25));
  o.teacher_weights = "1,1";
  EXPECT_NE(test::error_of([&] { o.teacher_weight_values(3); })
                .find("distill.teacher_weights = '1,1' gives 2 weights for 3 teachers"),
            std::string::npos);
  o.teacher_weights = "1,-2";
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("'-2' is not a number > 0"), std::string::npos);
  o.teacher_weights = "1,x";
  EXPECT_THROW(o.validate(), ConfigError);
}

// Note [regression]: float labels make the hard term the squared error of the one output over the
// labeled rows (NaN = unlabeled), divided by all rows; the soft term must be mse.
TEST(RegressionLoss, SquaredErrorOverLabeledRowsClosedFormAndGradient) {
  auto s = torch::tensor({0.5, -1.0, 2.0, 0.25}, torch::kFloat64).view({4, 1}).requires_grad_(true);
  const auto y = torch::tensor({1.0f, NAN, 1.5f, -0.75f});
  auto h = hard_ce(s, y);
  // (0.5 - 1)^2 + (2 - 1.5)^2 + (0.25 + 0.75)^2 = 1.5, over 4 rows
  EXPECT_NEAR(h.item<double>(), 1.5 / 4, 1e-12);
  h.backward();
  const auto g = s.grad();
  const double want[4] = {2 * -0.5 / 4, 0, 2 * 0.5 / 4, 2 * 1.0 / 4};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(g[i][0].item<double>(), want[i], 1e-12) << i;
  EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
  // No labeled row: 0, and a finite (zero) gradient.
  auto s2 = s.detach().clone().requires_grad_(true);
  auto none = hard_ce(s2, torch::full({4}, NAN, torch::kFloat32));
  EXPECT_EQ(none.item<double>(), 0.0);
  none.backward();
  EXPECT_EQ(s2.grad().abs().sum().item<double>(), 0.0);
}

TEST(RegressionLoss, KdLossAddsTheMseToTheTeacherAndRefusesDistributionKinds) {
  const auto s = torch::tensor({0.5, -1.0, 2.0}, torch::kFloat64).view({3, 1});
  const auto t = torch::tensor({1.0, -0.5, 1.0}, torch::kFloat64).view({3, 1});
  const auto y = torch::tensor({0.0f, -1.0f, 3.0f});
  KdOptions o;
  o.alpha = 0.3;
  o.beta = 0.7;
  o.soft_loss = SoftLoss::kMse;
  const auto terms = kd_loss(s, t, y, o);
  const double hard = (0.25 + 0.0 + 1.0) / 3, soft = (0.25 + 0.25 + 1.0) / 3;
  EXPECT_NEAR(terms.hard_ce.item<double>(), hard, 1e-12);
  EXPECT_NEAR(terms.soft_kl.item<double>(), soft, 1e-12);
  EXPECT_NEAR(terms.total.item<double>(), 0.3 * hard + 0.7 * soft, 1e-12);
  // Two teachers: the weighted mean of their outputs.
  const auto both = torch::stack({t, torch::zeros_like(t)});
  o.teacher_weights = "3,1";
  const auto mixed = kd_loss(s, both, y, o);
  EXPECT_NEAR(mixed.soft_kl.item<double>(), torch::mse_loss(s, 0.75 * t).item<double>(), 1e-12);
  o.soft_loss = SoftLoss::kKl;
  const auto msg = test::error_of([&] { kd_loss(s, t, y, o); });
  EXPECT_NE(msg.find("regression data (one output) needs distill.soft_loss: mse"), std::string::npos) << msg;
  const auto shape = test::error_of([&] { hard_ce(torch::zeros({3, 2}, torch::kFloat64), y); });
  EXPECT_NE(shape.find("expected [batch] and [batch, 1]"), std::string::npos) << shape;
}
