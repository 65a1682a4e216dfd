// Task metrics of a classifier from its confusion matrix: macro-F1 (the mean over the classes that
// occur among the labels or predictions, as scikit-learn's f1_score(average="macro")) and the
// Matthews correlation coefficient (Gorodkin's multiclass form, as sklearn's matthews_corrcoef).
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

}  // namespace distill
