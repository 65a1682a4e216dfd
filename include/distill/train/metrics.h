// Task metrics of a classifier from its confusion matrix: macro-F1 (the mean over the classes that
// occur among the labels or predictions, as scikit-learn's f1_score(average="macro")) and the
// Matthews correlation coefficient (Gorodkin's multiclass form, as sklearn's matthews_corrcoef); and
// the metrics of a regressor (one output): mean squared error, Pearson's r and Spearman's rho.
#pragma once
#include <cstdint>
#include <vector>

namespace distill {

struct ClassMetrics {
  double macro_f1 = 0;
  double mcc = 0;  // 0 when a marginal is constant (undefined)
};

// `confusion`: classes x classes counts, row = label, column = prediction (row-major).
ClassMetrics class_metrics(const std::vector<double>& confusion, std::int64_t classes);

struct RegressionMetrics {
  double mse = 0;       // mean of (pred - target)^2
  double pearson = 0;   // 0 when either side is constant (undefined)
  double spearman = 0;  // Pearson's r of the ranks, ties sharing their mean rank (scipy.stats.spearmanr)
};

// `pred` and `target` of equal length n >= 1, every value finite; throws Error naming the mismatch.
// Sums in double, with the means subtracted first (no cancellation for large offsets).
RegressionMetrics regression_metrics(const std::vector<double>& pred, const std::vector<double>& target);

}  // namespace distill
