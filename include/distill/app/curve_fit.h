// The learning curve of `distill curve`: transfer risk (P[student top-1 != teacher top-1] on held-out
// data) against the number n of transfer examples. fit_power fits risk ~= c (log n / n)^kappa by least
// squares in log-log space, with a t interval for kappa; curve_svg draws the measured points and the
// fits as one self-contained SVG. Torch-free and deterministic: the same input gives the same bytes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace distill {

struct CurvePoint {
  double n = 0;     // transfer examples
  double risk = 0;  // measured transfer risk
};

struct PowerFit {
  bool ok = false;                       // false: too few usable points (why says so)
  std::string why;                       // reason when !ok
  std::size_t points = 0;                // points used
  double kappa = 0, c = 0;               // risk ~= c * (log n / n)^kappa
  double kappa_low = 0, kappa_high = 0;  // interval of kappa at `level`; both equal kappa when points == 2
  double r2 = 0;                         // of the log-log regression (1 when every used risk is equal)
  double level = 0.95;                   // of the interval
  double below = 0;                      // the `below` it was fitted with (0: none)
  double n_min = 0, n_max = 0;           // the n range of the points used
};

// Least squares of log(risk) on log(log(n) / n) over the points with n >= 2, risk > 0 and, when
// below > 0, n < below (non-finite values are skipped). The interval is the t interval of the slope
// with points - 2 degrees of freedom. Throws ConfigError unless 0 < level < 1.
PowerFit fit_power(const std::vector<CurvePoint>& points, double below = 0, double level = 0.95);

// Whether fit_power would use `p` for a fit made with `below`.
bool fit_uses(const CurvePoint& p, double below);

// The two-sided Student t quantile q: P[|T| <= q] = level for `dof` degrees of freedom, by bisection
// on the regularized incomplete beta function. Throws ConfigError unless dof >= 1 and 0 < level < 1.
double t_quantile(double level, int dof);

struct CurveSeries {
  std::string name;
  std::vector<CurvePoint> points;
  PowerFit fit;
};

// A self-contained SVG (width x height px): n on a log x axis, transfer risk on a linear y axis from
// 0, one colour per series. Points are circles (filled when the fit used them, hollow otherwise; points
// with n <= 0 cannot be placed and are left out), each with a <title> "n = 20, risk = 0.2475"; an ok
// fit is a polyline of c (log n / n)^kappa over the n range it was fitted on, dashed beyond it up to
// the largest n plotted. Ticks, axis titles, a title, and a legend below the plot with each series'
// name and "fit: kappa = 0.52 [0.31, 0.73]"; when d > 0, a dashed vertical line at n = d labelled
// "n = d". Circles have class="point", fitted polylines class="fit", extensions class="fit-extension".
// Throws ConfigError when width < 240 or height < 160.
std::string curve_svg(const std::vector<CurveSeries>& series, const std::string& title, double d = 0, int width = 720,
                      int height = 440);

}  // namespace distill
