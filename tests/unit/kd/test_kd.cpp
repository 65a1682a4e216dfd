#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
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
