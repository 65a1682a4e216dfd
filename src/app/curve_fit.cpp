#include "distill/app/curve_fit.h"
#include "distill/app/line_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "distill/util/error.h"

namespace distill {

namespace {

// The continued fraction of the regularized incomplete beta function (modified Lentz).
double beta_fraction(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-16;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1) < eps) break;
  }
  return h;
}

// I_x(a, b), the regularized incomplete beta function.
double beta_regularized(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;
}


// n as a person writes it: 20, 1500, 2.5.
std::string count(double n) { return std::fabs(n) < 1e15 && n == std::floor(n) ? format_number("%.0f", n) : format_number("%g", n); }


double curve_at(const PowerFit& f, double n) { return f.c * std::pow(std::log(n) / n, f.kappa); }

// A tick label on the log axis: 5, 200, 0.5, 2e6.
std::string log_label(double v) {
  if (v >= 1e6) {
    const int k = static_cast<int>(std::floor(std::log10(v) + 1e-9));
    return format_number("%g", std::round(v / std::pow(10.0, k) * 100) / 100) + "e" + std::to_string(k);
  }
  return v >= 1 ? format_number("%.0f", v) : format_number("%g", v);
}


}  // namespace

bool fit_uses(const CurvePoint& p, double below) {
  return std::isfinite(p.n) && std::isfinite(p.risk) && p.n >= 2 && p.risk > 0 && (below <= 0 || p.n < below);
}

PowerFit fit_power(const std::vector<CurvePoint>& points, double below, double level) {
  DISTILL_CHECK(level > 0 && level < 1, ConfigError, "curve fit: level must lie in (0, 1), not ", level);
  PowerFit f;
  f.level = level;
  f.below = below;
  std::vector<double> xs, ys;
  for (const auto& p : points) {
    if (!fit_uses(p, below)) continue;
    xs.push_back(std::log(std::log(p.n) / p.n));
    ys.push_back(std::log(p.risk));
    f.n_min = xs.size() == 1 ? p.n : std::min(f.n_min, p.n);
    f.n_max = xs.size() == 1 ? p.n : std::max(f.n_max, p.n);
  }
  f.points = xs.size();
  if (f.points < 2) {
    f.why = str(f.points, " usable point", f.points == 1 ? "" : "s", " (n >= 2, risk > 0",
                below > 0 ? str(", n < ", below) : std::string(), "); a fit needs 2");
    return f;
  }
  const double m = static_cast<double>(f.points);
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) mx += xs[i] / m, my += ys[i] / m;
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    sxx += (xs[i] - mx) * (xs[i] - mx);
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) * (ys[i] - my);
  }
  // log(n) / n takes every value below its peak at n = e twice (n = 2 and n = 4, for one).
  if (!(sxx > 1e-300)) {
    f.why = str(f.points, " usable points, but all at the same log(n) / n; a fit needs 2 distinct");
    return f;
  }
  f.kappa = sxy / sxx;
  f.c = std::exp(my - f.kappa * mx);
  double ssr = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double e = ys[i] - (my + f.kappa * (xs[i] - mx));
    ssr += e * e;
  }
  f.r2 = syy > 0 ? std::max(0.0, 1 - ssr / syy) : 1;
  f.kappa_low = f.kappa_high = f.kappa;
  if (f.points > 2) {
    const int dof = static_cast<int>(f.points) - 2;
    const double half = t_quantile(level, dof) * std::sqrt(ssr / dof / sxx);
    f.kappa_low = f.kappa - half;
    f.kappa_high = f.kappa + half;
  }
  f.ok = true;
  return f;
}

double t_quantile(double level, int dof) {
  DISTILL_CHECK(dof >= 1, ConfigError, "t quantile: degrees of freedom must be >= 1, not ", dof);
  DISTILL_CHECK(level > 0 && level < 1, ConfigError, "t quantile: level must lie in (0, 1), not ", level);
  // P[|T| > t] = I_x(dof / 2, 1 / 2) with x = dof / (dof + t^2), increasing in x: bisect on x.
  const double a = dof / 2.0, alpha = 1 - level;
  double lo = 0, hi = 1;
  for (int i = 0; i < 2000; ++i) {
    const double mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    (beta_regularized(a, 0.5, mid) < alpha ? lo : hi) = mid;
  }
  const double x = lo + (hi - lo) / 2;
  return std::sqrt(dof * (1 - x) / x);
}

namespace {

bool drawable(const CurvePoint& p) { return std::isfinite(p.n) && std::isfinite(p.risk) && p.n > 0; }

// Where the plot sits and how data map to pixels: x = log n, y = risk from 0 to y_top.
struct Plot {
  double left, top, plot_w, plot_h, bottom, lx0, lx1, y_step, y_top;
  double px(double n) const { return left + (std::log(n) - lx0) / (lx1 - lx0) * plot_w; }
  double py(double r) const { return bottom - r / y_top * plot_h; }
};

void y_axis(std::string& o, const Plot& g) {
  // The y axis: grid, ticks and labels from 0 to g.y_top.
  const int y_decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(g.y_step) - 1e-9))) +
                         (std::fabs(g.y_step / std::pow(10.0, std::floor(std::log10(g.y_step))) - 2.5) < 1e-9 ? 1 : 0);
  for (int i = 0; i * g.y_step <= g.y_top * (1 + 1e-9); ++i) {
    const double v = i * g.y_step, y = g.py(v);
    char label[32];
    std::snprintf(label, sizeof label, "%.*f", y_decimals, v);
    o += "<line x1=\"" + svg_coord(g.left) + "\" y1=\"" + svg_coord(y) + "\" x2=\"" + svg_coord(g.left + g.plot_w) + "\" y2=\"" +
         svg_coord(y) + "\" stroke=\"#e6e6e6\"/>\n";
    o += "<line x1=\"" + svg_coord(g.left - 5) + "\" y1=\"" + svg_coord(y) + "\" x2=\"" + svg_coord(g.left) + "\" y2=\"" +
         svg_coord(y) + "\" stroke=\"black\"/>\n";
    o += "<text x=\"" + svg_coord(g.left - 8) + "\" y=\"" + svg_coord(y + 4) + "\" text-anchor=\"end\">" + label + "</text>\n";
  }
}

void x_axis(std::string& o, const Plot& g) {
  // The x axis: the sparsest of 1, {1, 2, 5} or 1..9 times powers of ten that gives 5 ticks; labels
  // that would overlap the previous one are g.left out.
  std::vector<double> ticks;
  const double v_lo = std::exp(g.lx0), v_hi = std::exp(g.lx1);
  for (const auto& mantissas : std::vector<std::vector<int>>{{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    ticks.clear();
    for (int k = static_cast<int>(std::floor(std::log10(v_lo))); k <= static_cast<int>(std::ceil(std::log10(v_hi)));
         ++k)
      for (int m : mantissas) {
        const double v = m * std::pow(10.0, k);
        if (v >= v_lo && v <= v_hi) ticks.push_back(v);
      }
    if (ticks.size() >= 5) break;
  }
  // A narrow range (under a factor of about 3): evenly spaced round values instead.
  bool linear = false;
  if (ticks.size() < 3) {
    const double step = nice_step((v_hi - v_lo) / 4);
    ticks.clear();
    for (double v = std::ceil(v_lo / step) * step; v <= v_hi; v += step) ticks.push_back(v);
    linear = true;
  }
  double last_end = -1e9;
  for (double v : ticks) {
    const double x = g.px(v);
    o += "<line x1=\"" + svg_coord(x) + "\" y1=\"" + svg_coord(g.top) + "\" x2=\"" + svg_coord(x) + "\" y2=\"" + svg_coord(g.bottom) +
         "\" stroke=\"#e6e6e6\"/>\n";
    o += "<line x1=\"" + svg_coord(x) + "\" y1=\"" + svg_coord(g.bottom) + "\" x2=\"" + svg_coord(x) + "\" y2=\"" +
         svg_coord(g.bottom + 5) + "\" stroke=\"black\"/>\n";
    const std::string label = linear && v < 1e6 ? format_number("%g", v) : log_label(v);
    const double half = 3.5 * label.size() + 3;
    if (x - half < last_end) continue;
    last_end = x + half;
    o +=
        "<text x=\"" + svg_coord(x) + "\" y=\"" + svg_coord(g.bottom + 18) + "\" text-anchor=\"middle\">" + label + "</text>\n";
  }
  o += "<rect x=\"" + svg_coord(g.left) + "\" y=\"" + svg_coord(g.top) + "\" width=\"" + svg_coord(g.plot_w) + "\" height=\"" +
       svg_coord(g.plot_h) + "\" fill=\"none\" stroke=\"black\"/>\n";
  o += "<text x=\"" + svg_coord(g.left + g.plot_w / 2) + "\" y=\"" + svg_coord(g.bottom + 38) +
       "\" text-anchor=\"middle\">transfer examples n (log scale)</text>\n";
  // The long y title when it fits along the plot (about 6.6 px a character).
  const bool long_y = 6.6 * 42 <= g.plot_h + 30;
  o += "<text transform=\"translate(18 " + svg_coord(g.top + g.plot_h / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       (long_y ? "transfer risk P[student top-1 &#8800; teacher top-1]" : "transfer risk") + "</text>\n";
}

void d_line(std::string& o, const Plot& g, double d) {
  if (d > 0 && std::isfinite(d)) {
    const double x = g.px(d);
    const bool flip = x > g.left + g.plot_w - 110;
    o += "<line class=\"d\" x1=\"" + svg_coord(x) + "\" y1=\"" + svg_coord(g.top) + "\" x2=\"" + svg_coord(x) + "\" y2=\"" +
         svg_coord(g.bottom) + "\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n";
    o += "<text x=\"" + svg_coord(flip ? x - 5 : x + 5) + "\" y=\"" + svg_coord(g.top + 14) + "\" text-anchor=\"" +
         (flip ? "end" : "start") +
         "\" fill=\"#333\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\">n = d = " + count(d) +
         "</text>\n";
  }
}

// Fits under the points (solid where fitted, dashed up to `data_n_hi`), then the points.
void fits_and_points(std::string& o, const Plot& g, const std::vector<CurveSeries>& series, double data_n_hi) {
  // Fits under the points, clipped to the plot.
  for (std::size_t i = 0; i < series.size(); ++i) {
    const PowerFit& f = series[i].fit;
    if (!f.ok) continue;
    const std::string colour = series_colour(i);
    const auto polyline = [&](double a, double b, const char* cls, const char* extra) {
      std::string pts;
      for (int k = 0; k <= 64; ++k) {
        const double n = a * std::pow(b / a, k / 64.0), v = curve_at(f, n);
        if (!std::isfinite(v)) continue;
        pts += (pts.empty() ? "" : " ") + svg_coord(g.px(n)) + "," + svg_coord(g.py(v));
      }
      o += std::string("<polyline class=\"") + cls + "\" points=\"" + pts + "\" fill=\"none\" stroke=\"" + colour +
           "\" stroke-width=\"2\" clip-path=\"url(#plot-area)\"" + extra + "/>\n";
    };
    polyline(f.n_min, f.n_max, "fit", "");
    if (data_n_hi > f.n_max) polyline(f.n_max, data_n_hi, "fit-extension", " stroke-dasharray=\"5 4\"");
  }
  for (std::size_t i = 0; i < series.size(); ++i) {
    const std::string colour = series_colour(i);
    for (const auto& p : series[i].points) {
      if (!drawable(p)) continue;
      const bool used = series[i].fit.ok && fit_uses(p, series[i].fit.below);
      o += "<circle class=\"point\" cx=\"" + svg_coord(g.px(p.n)) + "\" cy=\"" + svg_coord(g.py(p.risk)) +
           "\" r=\"4\" fill=\"" + (used ? colour : std::string("white")) + "\" stroke=\"" + colour +
           "\" stroke-width=\"1.5\"><title>n = " + count(p.n) + ", risk = " + format_number("%.4g", p.risk) +
           "</title></circle>\n";
    }
  }
}

// One row per series from `y` down, and the row explaining hollow points.
void legend(std::string& o, const std::vector<CurveSeries>& series, double y, double row_h, bool hollow, int width) {
  // The legend, one row per series, below the x axis title. The fit's details go when the row would
  // not fit (about 6.6 px a character, 7.2 in bold).
  const double lx = 16;
  for (std::size_t i = 0; i < series.size(); ++i, y += row_h) {
    const std::string colour = series_colour(i);
    const PowerFit& f = series[i].fit;
    o += "<line x1=\"" + svg_coord(lx) + "\" y1=\"" + svg_coord(y - 4) + "\" x2=\"" + svg_coord(lx + 24) + "\" y2=\"" +
         svg_coord(y - 4) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    o += "<circle cx=\"" + svg_coord(lx + 12) + "\" cy=\"" + svg_coord(y - 4) + "\" r=\"4\" fill=\"" + colour + "\"/>\n";
    std::string text = "no fit: " + f.why;
    if (f.ok) {
      text = "fit: kappa = " + format_number("%.2f", f.kappa) + " [" + format_number("%.2f", f.kappa_low) + ", " +
             format_number("%.2f", f.kappa_high) + "]";
      const std::string details = " at " + format_number("%g", f.level * 100) + "%, c = " + format_number("%.3g", f.c) +
                                  ", r2 = " + format_number("%.3f", f.r2) + ", " + std::to_string(f.points) + " points" +
                                  (f.below > 0 ? " with n < " + count(f.below) : std::string());
      if (lx + 32 + 7.2 * series[i].name.size() + 10 + 6.6 * (text.size() + details.size()) < width - 8)
        text += details;
    }
    o += "<text x=\"" + svg_coord(lx + 32) + "\" y=\"" + svg_coord(y) + "\"><tspan font-weight=\"bold\">" +
         html_escape(series[i].name) + "</tspan><tspan dx=\"10\">" + html_escape(text) + "</tspan></text>\n";
  }
  if (hollow) {
    o += "<circle cx=\"" + svg_coord(lx + 12) + "\" cy=\"" + svg_coord(y - 4) + "\" r=\"4\" fill=\"white\" stroke=\"#555\" " +
         "stroke-width=\"1.5\"/>\n";
    o += "<text x=\"" + svg_coord(lx + 32) + "\" y=\"" + svg_coord(y) +
         "\" fill=\"#555\">hollow: not used in the fit (risk 0, n &lt; 2, n at or past the fit's bound, or no "
         "fit)</text>\n";
  }
}

}  // namespace

std::string curve_svg(const std::vector<CurveSeries>& series, const std::string& title, double d, int width,
                      int height) {
  DISTILL_CHECK(width >= 240 && height >= 160, ConfigError, "curve plot: ", width, " x ", height,
                " px is too small (at least 240 x 160)");
  bool hollow = false;
  double n_lo = std::numeric_limits<double>::infinity(), n_hi = -n_lo, r_hi = 0;
  for (const auto& s : series)
    for (const auto& p : s.points) {
      if (!drawable(p)) continue;
      n_lo = std::min(n_lo, p.n);
      n_hi = std::max(n_hi, p.n);
      r_hi = std::max(r_hi, p.risk);
      hollow = hollow || !(s.fit.ok && fit_uses(p, s.fit.below));
    }
  const double data_n_hi = n_hi;
  if (d > 0 && std::isfinite(d)) n_lo = std::min(n_lo, d), n_hi = std::max(n_hi, d);
  if (!(n_lo <= n_hi)) n_lo = 1, n_hi = 10;
  if (n_lo == n_hi) n_lo /= 2, n_hi *= 2;
  for (const auto& s : series)
    if (s.fit.ok)
      for (int i = 0; i <= 16; ++i) {
        const double v = curve_at(s.fit, s.fit.n_min * std::pow(s.fit.n_max / s.fit.n_min, i / 16.0));
        if (std::isfinite(v)) r_hi = std::max(r_hi, v);
      }
  if (!(r_hi > 0) || !std::isfinite(r_hi)) r_hi = 1;

  // Layout: title above; tick labels, the x axis title and then the legend below the plot.
  const std::size_t legend_rows = series.size() + (hollow ? 1 : 0);
  const double left = 68, right = 24, top = 40, axis_h = 48, row_h = 18;
  const double plot_w = width - left - right;
  const double plot_h = std::max(40.0, height - top - axis_h - row_h * legend_rows - 10);
  const double bottom = top + plot_h;
  const double lx0 = std::log(n_lo) - 0.04 * std::log(n_hi / n_lo), lx1 = std::log(n_hi) + 0.04 * std::log(n_hi / n_lo);
  const double y_step = nice_step(r_hi / 5), y_top = std::ceil(r_hi / y_step - 1e-9) * y_step;
  const Plot g{left, top, plot_w, plot_h, bottom, lx0, lx1, y_step, y_top};

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
       std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<defs><clipPath id=\"plot-area\"><rect x=\"" + svg_coord(left) + "\" y=\"" + svg_coord(top) + "\" width=\"" +
       svg_coord(plot_w) + "\" height=\"" + svg_coord(plot_h) + "\"/></clipPath></defs>\n";
  o += "<text x=\"" + svg_coord(width / 2.0) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">" +
       html_escape(title) + "</text>\n";

  y_axis(o, g);
  x_axis(o, g);
  d_line(o, g, d);
  fits_and_points(o, g, series, data_n_hi);
  legend(o, series, bottom + axis_h + 14, row_h, hollow, width);
  o += "</svg>\n";
  return o;
}

}  // namespace distill
