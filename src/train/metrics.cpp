#include "distill/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

namespace {

bool constant(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); });
}

// Pearson's r with the means subtracted first; 0 when either side is constant (tested exactly: the
// mean of equal values need not equal them, which would leave rounding noise for r).
double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (constant(x) || constant(y)) return 0.0;
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return 0.0;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

// 1-based ranks, ties sharing their mean rank (scipy.stats.rankdata(method="average")).
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i + 1;
    while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
    const double mean = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k) rank[order[k]] = mean;
    i = j;
  }
  return rank;
}

}  // namespace

RegressionMetrics regression_metrics(const std::vector<double>& pred, const std::vector<double>& target) {
  DISTILL_CHECK(!pred.empty() && pred.size() == target.size(), Error, "regression metrics: pred has ", pred.size(),
                " values, target ", target.size());
  for (std::size_t i = 0; i < pred.size(); ++i) {
    DISTILL_CHECK(std::isfinite(pred[i]), Error, "regression metrics: pred[", i, "] = ", pred[i], " is not finite");
    DISTILL_CHECK(std::isfinite(target[i]), Error, "regression metrics: target[", i, "] = ", target[i],
                  " is not finite");
  }
  RegressionMetrics r;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    const double d = pred[i] - target[i];
    r.mse += d * d;
  }
  r.mse /= static_cast<double>(pred.size());
  r.pearson = pearson(pred, target);
  r.spearman = pearson(average_ranks(pred), average_ranks(target));
  return r;
}

}  // namespace distill
