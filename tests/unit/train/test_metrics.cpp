// Macro-F1 and MCC against closed forms.
#include <gtest/gtest.h>

#include <cmath>

#include "distill/train/metrics.h"

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
