#include "distill/train/metrics.h"

#include <cmath>

#include "distill/util/error.h"

namespace distill {

ClassMetrics class_metrics(const std::vector<double>& m, std::int64_t classes) {
  const auto k = static_cast<std::size_t>(classes);
  DISTILL_CHECK(classes > 0 && m.size() == k * k, Error, "confusion matrix of ", m.size(), " cells for ", classes,
                " classes");
  std::vector<double> truth(k, 0.0), pred(k, 0.0);
  double total = 0, correct = 0;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      truth[i] += m[i * k + j];
      pred[j] += m[i * k + j];
      total += m[i * k + j];
    }
  ClassMetrics r;
  double f1 = 0;
  int present = 0;
  for (std::size_t c = 0; c < k; ++c) {
    correct += m[c * k + c];
    if (truth[c] + pred[c] == 0) continue;
    ++present;
    f1 += 2 * m[c * k + c] / (truth[c] + pred[c]);
  }
  r.macro_f1 = present > 0 ? f1 / present : 0.0;
  double tp = 0, tt = 0, pp = 0;
  for (std::size_t c = 0; c < k; ++c) {
    tp += truth[c] * pred[c];
    tt += truth[c] * truth[c];
    pp += pred[c] * pred[c];
  }
  const double den = std::sqrt((total * total - pp) * (total * total - tt));
  r.mcc = den > 0 ? (correct * total - tp) / den : 0.0;
  return r;
}

}  // namespace distill
