#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "distill/app/curve_fit.h"
#include "distill/util/error.h"

using namespace distill;

namespace {

double law(double c, double kappa, double n) { return c * std::pow(std::log(n) / n, kappa); }

// A standard normal by Box-Muller over the raw mt19937_64 stream, which the standard fixes exactly
// (std::normal_distribution does not, so its values differ between standard libraries).
double normal(std::mt19937_64& g) {
  const double u1 = (static_cast<double>(g() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(g() >> 11) * 0x1.0p-53;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

// risk = c (log n / n)^kappa * exp(sigma Z) at n = 5, 10, 20, ... (12 points).
std::vector<CurvePoint> noisy(std::mt19937_64& g, double c, double kappa, double sigma) {
  std::vector<CurvePoint> pts;
  for (int k = 0; k < 12; ++k) {
    const double n = 5 * std::pow(2.0, k);
    pts.push_back({n, law(c, kappa, n) * std::exp(sigma * normal(g))});
  }
  return pts;
}

int occurrences(const std::string& s, const std::string& what) {
  int k = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++k;
  return k;
}

}  // namespace

TEST(CurveFit, RecoversExactPowerLaw) {
  std::vector<CurvePoint> pts;
  for (double n : {5, 10, 20, 40, 80, 160}) pts.push_back({n, law(0.7, 0.8, n)});
  const PowerFit f = fit_power(pts);
  ASSERT_TRUE(f.ok) << f.why;
  EXPECT_EQ(f.points, 6u);
  EXPECT_NEAR(f.kappa, 0.8, 1e-9);
  EXPECT_NEAR(f.c, 0.7, 1e-9);
  EXPECT_NEAR(f.r2, 1.0, 1e-12);
  EXPECT_NEAR(f.kappa_low, 0.8, 1e-9);
  EXPECT_NEAR(f.kappa_high, 0.8, 1e-9);
  EXPECT_EQ(f.n_min, 5);
  EXPECT_EQ(f.n_max, 160);
}

TEST(CurveFit, NoisyIntervalContainsTruth) {
  std::mt19937_64 g(20240611);
  const PowerFit f = fit_power(noisy(g, 0.6, 0.5, 0.1));
  ASSERT_TRUE(f.ok) << f.why;
  EXPECT_EQ(f.points, 12u);
  EXPECT_LT(f.kappa_low, 0.5);
  EXPECT_GT(f.kappa_high, 0.5);
  EXPECT_GT(f.kappa_high - f.kappa_low, 1e-3);
  EXPECT_LT(f.kappa_high - f.kappa_low, 0.5);
  EXPECT_NEAR(f.kappa, 0.5, 0.2);
  EXPECT_LT(f.r2, 1.0);
  EXPECT_GT(f.r2, 0.9);
  // A lower level gives a narrower interval around the same estimate.
  std::mt19937_64 g2(20240611);
  const PowerFit f80 = fit_power(noisy(g2, 0.6, 0.5, 0.1), 0, 0.8);
  EXPECT_DOUBLE_EQ(f80.kappa, f.kappa);
  EXPECT_LT(f80.kappa_high - f80.kappa_low, f.kappa_high - f.kappa_low);
}

TEST(CurveFit, IntervalCoverageIsNominal) {
  // Over 400 seeded replications the 95% interval should cover kappa about 380 times
  // (binomial sd ~ 4.4); a wrong quantile or standard error moves this far.
  std::mt19937_64 g(7);
  int covered = 0;
  for (int r = 0; r < 400; ++r) {
    const PowerFit f = fit_power(noisy(g, 0.6, 0.5, 0.1));
    covered += f.kappa_low <= 0.5 && 0.5 <= f.kappa_high;
  }
  EXPECT_GE(covered, 365);
  EXPECT_LE(covered, 395);
}

TEST(CurveFit, BelowAndZerosAreExcluded) {
  std::vector<CurvePoint> pts;
  for (double n : {5, 10, 20, 40, 80}) pts.push_back({n, law(0.7, 0.8, n)});
  pts.push_back({160, 0.0});  // zero risk: drawn, not fitted
  pts.push_back({1, 0.5});    // log n / n = 0
  const PowerFit all = fit_power(pts);
  ASSERT_TRUE(all.ok) << all.why;
  EXPECT_EQ(all.points, 5u);
  EXPECT_NEAR(all.kappa, 0.8, 1e-9);

  pts.push_back({1000, 0.9});  // off the law, at and past `below`
  pts.push_back({5000, 0.9});
  const PowerFit below = fit_power(pts, 1000);
  ASSERT_TRUE(below.ok) << below.why;
  EXPECT_EQ(below.points, 5u);
  EXPECT_NEAR(below.kappa, 0.8, 1e-9);
  EXPECT_NEAR(below.c, 0.7, 1e-9);
  EXPECT_EQ(below.n_max, 80);
  EXPECT_EQ(below.below, 1000);
  EXPECT_FALSE(fit_uses({1000, 0.9}, 1000));
  EXPECT_TRUE(fit_uses({999, 0.9}, 1000));
  const PowerFit unbounded = fit_power(pts);
  EXPECT_EQ(unbounded.points, 7u);
  EXPECT_GT(std::fabs(unbounded.kappa - 0.8), 0.1);
}

TEST(CurveFit, TooFewPointsIsNotOk) {
  const PowerFit none = fit_power({});
  EXPECT_FALSE(none.ok);
  EXPECT_NE(none.why.find("0 usable points"), std::string::npos) << none.why;

  const PowerFit one = fit_power({{10, 0.3}, {20, 0}, {40, 0}});
  EXPECT_FALSE(one.ok);
  EXPECT_EQ(one.points, 1u);
  EXPECT_NE(one.why.find("1 usable point"), std::string::npos) << one.why;

  const PowerFit cut = fit_power({{10, 0.3}, {20, 0.2}, {40, 0.1}}, 20);
  EXPECT_FALSE(cut.ok);
  EXPECT_NE(cut.why.find("n < 20"), std::string::npos) << cut.why;

  // log(2) / 2 == log(4) / 4: two points, one abscissa.
  const PowerFit same = fit_power({{2, 0.3}, {4, 0.2}});
  EXPECT_FALSE(same.ok);
  EXPECT_FALSE(same.why.empty());

  const PowerFit two = fit_power({{10, law(0.7, 0.8, 10)}, {100, law(0.7, 0.8, 100)}});
  ASSERT_TRUE(two.ok) << two.why;
  EXPECT_NEAR(two.kappa, 0.8, 1e-9);
  EXPECT_EQ(two.kappa_low, two.kappa);
  EXPECT_EQ(two.kappa_high, two.kappa);

  EXPECT_THROW(fit_power({{10, 0.3}, {20, 0.2}}, 0, 1.0), ConfigError);
}

TEST(CurveFit, TQuantileMatchesTables) {
  EXPECT_NEAR(t_quantile(0.95, 1), 12.7062, 1e-3);
  EXPECT_NEAR(t_quantile(0.95, 2), 4.3027, 1e-3);
  EXPECT_NEAR(t_quantile(0.95, 5), 2.5706, 1e-3);
  EXPECT_NEAR(t_quantile(0.95, 10), 2.2281, 1e-3);
  EXPECT_NEAR(t_quantile(0.95, 30), 2.0423, 1e-3);
  EXPECT_NEAR(t_quantile(0.95, 1000), 1.9623, 1e-3);
  EXPECT_NEAR(t_quantile(0.9, 5), 2.0150, 1e-3);
  EXPECT_NEAR(t_quantile(0.99, 3), 5.8409, 1e-3);
  EXPECT_NEAR(t_quantile(0.5, 1), 1.0, 1e-9);  // Cauchy: P[|T| <= 1] = 1/2
  EXPECT_THROW(t_quantile(0.95, 0), ConfigError);
  EXPECT_THROW(t_quantile(0, 5), ConfigError);
}

TEST(CurveFit, SvgHasPointsFitsAxesAndLegend) {
  CurveSeries a{"A & <b>", {}, {}};
  for (double n : {20, 40, 80, 160, 320, 640}) a.points.push_back({n, law(0.9, 0.6, n)});
  a.fit = fit_power(a.points);
  CurveSeries z{"zeros", {{20, 0.2475}, {40, 0.0}, {80, 0.0}, {160, 0.05}}, {}};
  z.fit = fit_power(z.points);
  CurveSeries lone{"lone", {{50, 0.1}}, {}};
  lone.fit = fit_power(lone.points);
  ASSERT_TRUE(a.fit.ok);
  ASSERT_TRUE(z.fit.ok);
  ASSERT_FALSE(lone.fit.ok);

  const std::string svg = curve_svg({a, z, lone}, "Transfer <risk>", 1000);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(occurrences(svg, "class=\"point\""), 11);
  EXPECT_EQ(occurrences(svg, "class=\"fit\""), 2);
  EXPECT_EQ(occurrences(svg, "class=\"fit-extension\""), 1);  // "zeros" is fitted up to 160 of 640
  EXPECT_NE(svg.find("transfer examples n (log scale)"), std::string::npos);
  EXPECT_NE(svg.find("transfer risk"), std::string::npos);
  EXPECT_NE(svg.find("A &amp; &lt;b&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("A & <b>"), std::string::npos);
  EXPECT_NE(svg.find("Transfer &lt;risk&gt;"), std::string::npos);
  EXPECT_NE(svg.find("<title>n = 20, risk = 0.2475</title>"), std::string::npos);
  EXPECT_NE(svg.find("fit: kappa = 0.60 [0.60, 0.60]"), std::string::npos);
  EXPECT_NE(svg.find("no fit: 1 usable point"), std::string::npos);
  EXPECT_NE(svg.find("n = d"), std::string::npos);
  EXPECT_NE(svg.find("class=\"d\""), std::string::npos);

  // Every circle lies inside the canvas, and the zero risks lie on the x axis (the lowest circles).
  const std::regex circle("class=\"point\" cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\"");
  double max_cy = -1;
  int zeros_at_max = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle); it != std::sregex_iterator(); ++it) {
    const double cx = std::stod((*it)[1]), cy = std::stod((*it)[2]);
    EXPECT_GT(cx, 0);
    EXPECT_LT(cx, 720);
    EXPECT_GT(cy, 0);
    EXPECT_LT(cy, 440);
    if (cy > max_cy + 1e-9) max_cy = cy, zeros_at_max = 0;
    if (std::fabs(cy - max_cy) < 1e-9) ++zeros_at_max;
  }
  EXPECT_EQ(zeros_at_max, 2);

  const std::string plain = curve_svg({a}, "t");
  EXPECT_EQ(plain.find("n = d"), std::string::npos);
  EXPECT_EQ(occurrences(plain, "class=\"point\""), 6);
  EXPECT_EQ(occurrences(plain, "class=\"fit-extension\""), 0);
  EXPECT_THROW(curve_svg({a}, "t", 0, 100, 100), ConfigError);
}
