// Macro-F1 and MCC against closed forms; MSE, Pearson and Spearman against closed forms and numpy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "distill/train/metrics.h"
#include "test_util.h"

using namespace distill;

TEST(ClassMetrics, BinaryClosedForms) {
  // labels 0/1, rows = label: TN 50, FP 10 / FN 5, TP 35.
  const double tn = 50, fp = 10, fn = 5, tp = 35;
  const auto r = class_metrics({tn, fp, fn, tp}, 2);
  const double f1_pos = 2 * tp / (2 * tp + fp + fn), f1_neg = 2 * tn / (2 * tn + fn + fp);
  EXPECT_NEAR(r.macro_f1, (f1_pos + f1_neg) / 2, 1e-12);
  const double mcc = (tp * tn - fp * fn) / std::sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  EXPECT_NEAR(r.mcc, mcc, 1e-12);
}

TEST(ClassMetrics, MulticlassByHand) {
  // 3 classes; rows = label. Class 2 is never predicted, class 1 never a label but predicted once.
  //        pred 0  1  2
  // label 0:    4  1  0
  // label 2:    2  0  0   (row 1 all zero)
  const std::vector<double> m = {4, 1, 0, 0, 0, 0, 2, 0, 0};
  const auto r = class_metrics(m, 3);
  // F1: class 0 = 2*4 / (5 + 6) = 8/11; class 1 = 0 (1 predicted, 0 true); class 2 = 0 (2 true).
  EXPECT_NEAR(r.macro_f1, (8.0 / 11 + 0 + 0) / 3, 1e-12);
  // MCC (Gorodkin): c = 4, s = 7, t = (5, 0, 2), p = (6, 1, 0):
  // (4*7 - (30 + 0 + 0)) / sqrt((49 - 37) (49 - 29)) = -2 / sqrt(240).
  EXPECT_NEAR(r.mcc, -2.0 / std::sqrt(240.0), 1e-12);
}

TEST(ClassMetrics, PerfectAndDegenerate) {
  const auto perfect = class_metrics({3, 0, 0, 0, 4, 0, 0, 0, 5}, 3);
  EXPECT_DOUBLE_EQ(perfect.macro_f1, 1.0);
  EXPECT_DOUBLE_EQ(perfect.mcc, 1.0);
  const auto one_class = class_metrics({0, 6, 0, 4}, 2);  // always predicts 1
  EXPECT_EQ(one_class.mcc, 0.0);                          // undefined: 0
  EXPECT_NEAR(one_class.macro_f1, (0 + 8.0 / 14) / 2, 1e-12);
  EXPECT_EQ(class_metrics({0, 0, 0, 0}, 2).macro_f1, 0.0);
}

TEST(RegressionMetrics, PerfectLinearAndNegated) {
  const std::vector<double> x = {-1.5, 0.25, 2, 3.5, 10};
  std::vector<double> up, down;
  for (double v : x) {
    up.push_back(3 * v + 7);
    down.push_back(-2 * v);
  }
  const auto r = regression_metrics(x, up);
  EXPECT_NEAR(r.pearson, 1.0, 1e-12);
  EXPECT_NEAR(r.spearman, 1.0, 1e-12);
  double mse = 0;
  for (double v : x) mse += (2 * v + 7) * (2 * v + 7);
  EXPECT_NEAR(r.mse, mse / 5, 1e-12);
  const auto n = regression_metrics(x, down);
  EXPECT_NEAR(n.pearson, -1.0, 1e-12);
  EXPECT_NEAR(n.spearman, -1.0, 1e-12);
  const auto same = regression_metrics(x, x);
  EXPECT_EQ(same.mse, 0.0);
  EXPECT_NEAR(same.pearson, 1.0, 1e-12);
}

TEST(RegressionMetrics, SmallExampleByHand) {
  // pred (1, 2, 3, 4), target (2, 1, 4, 3): means 2.5; deviations (-1.5, -.5, .5, 1.5) and
  // (-.5, -1.5, 1.5, .5): sxy = .75 + .75 + .75 + .75 = 3, sxx = syy = 5, r = 0.6. Ranks equal the
  // values, so rho = 0.6 too. mse = (1 + 1 + 1 + 1) / 4 = 1.
  const auto r = regression_metrics({1, 2, 3, 4}, {2, 1, 4, 3});
  EXPECT_NEAR(r.mse, 1.0, 1e-12);
  EXPECT_NEAR(r.pearson, 0.6, 1e-12);
  EXPECT_NEAR(r.spearman, 0.6, 1e-12);
}

TEST(RegressionMetrics, TiesShareTheirMeanRank) {
  // pred (10, 20, 20, 30, 30, 30) ranks (1, 2.5, 2.5, 5, 5, 5);
  // target (1, 1, 2, 8, 9, 9) ranks (1.5, 1.5, 3, 4, 5.5, 5.5). Both rank means 3.5.
  // Deviations a = (-2.5, -1, -1, 1.5, 1.5, 1.5), b = (-2, -2, -.5, .5, 2, 2):
  // sab = 5 + 2 + .5 + .75 + 3 + 3 = 14.25, saa = 6.25 + 1 + 1 + 3 * 2.25 = 15,
  // sbb = 4 + 4 + .25 + .25 + 4 + 4 = 16.5; rho = 14.25 / sqrt(15 * 16.5).
  const auto r = regression_metrics({10, 20, 20, 30, 30, 30}, {1, 1, 2, 8, 9, 9});
  EXPECT_NEAR(r.spearman, 14.25 / std::sqrt(15 * 16.5), 1e-12);
  // Ranks do not depend on order: permuting both sides alike changes nothing.
  const auto p = regression_metrics({30, 20, 10, 30, 20, 30}, {9, 2, 1, 8, 1, 9});
  EXPECT_NEAR(p.spearman, r.spearman, 1e-12);
  EXPECT_NEAR(p.pearson, r.pearson, 1e-12);
}

TEST(RegressionMetrics, ConstantSidesGiveZero) {
  // 0.1 three times: its double mean is not 0.1, so only an exact test for constancy gives 0.
  const auto a = regression_metrics({0.1, 0.1, 0.1}, {1, 2, 3});
  EXPECT_EQ(a.pearson, 0.0);
  EXPECT_EQ(a.spearman, 0.0);
  EXPECT_NEAR(a.mse, (0.81 + 3.61 + 8.41) / 3, 1e-12);
  const auto b = regression_metrics({1, 5, 2}, {7, 7, 7});
  EXPECT_EQ(b.pearson, 0.0);
  EXPECT_EQ(b.spearman, 0.0);
  const auto one = regression_metrics({2}, {3});
  EXPECT_EQ(one.mse, 1.0);
  EXPECT_EQ(one.pearson, 0.0);
  EXPECT_EQ(one.spearman, 0.0);
}

TEST(RegressionMetrics, RejectsMismatchEmptyAndNonFinite) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  EXPECT_THROW(regression_metrics({1, 2, 3}, {1, 2, 3, 4}), Error);
  const auto mismatch = test::error_of([] { regression_metrics({1, 2, 3}, {1, 2, 3, 4}); });
  EXPECT_NE(mismatch.find("pred has 3 values, target 4"), std::string::npos) << mismatch;
  EXPECT_THROW(regression_metrics({}, {}), Error);
  EXPECT_THROW(regression_metrics({1, nan, 3}, {1, 2, 3}), Error);
  EXPECT_NE(test::error_of([&] { regression_metrics({1, 2, 3}, {1, 2, inf}); }).find("target[2]"), std::string::npos);
  EXPECT_NE(test::error_of([&] { regression_metrics({1, nan, 3}, {1, 2, 3}); }).find("pred[1]"), std::string::npos);
}

TEST(RegressionMetrics, MatchesNumpyReference) {
  std::ifstream in(test::fixture("regression_metrics_ref.json"));
  ASSERT_TRUE(in) << test::fixture("regression_metrics_ref.json");
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 5u);
  // 1e-12 absolute, or relative to the reference where that is larger.
  const auto near = [](double got, double want) {
    return std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want));
  };
  for (const auto& c : cases) {
    const auto r = regression_metrics(c["pred"].get<std::vector<double>>(), c["target"].get<std::vector<double>>());
    const auto name = c["name"].get<std::string>();
    EXPECT_PRED2(near, r.mse, c["mse"].get<double>()) << name;
    EXPECT_PRED2(near, r.pearson, c["pearson"].get<double>()) << name;
    EXPECT_PRED2(near, r.spearman, c["spearman"].get<double>()) << name;
  }
}
