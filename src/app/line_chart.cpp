#include "distill/app/line_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace distill {

namespace {

constexpr double kLeft = 72, kRight = 28, kTop = 34, kAxisH = 46, kRowH = 18;
constexpr double kCharW = 6.6;            // px per character of 12 px sans-serif, roughly
constexpr std::size_t kMarkersUpTo = 40;  // points per series that still get markers
constexpr std::size_t kBuckets = 1000;    // a longer series keeps each bucket's lowest and highest point




// v in scientific notation, short: 2e-5, 1.5e6.
std::string short_e(double v) {
  std::string s = format_number("%.3e", v);
  const auto e = s.find('e');
  std::string mantissa = s.substr(0, e), exp = s.substr(e + 1);
  mantissa.erase(mantissa.find_last_not_of('0') + 1);
  if (mantissa.back() == '.') mantissa.pop_back();
  const bool minus = exp[0] == '-';
  exp.erase(0, std::min(exp.size() - 1, exp.find_first_not_of("+-0")));
  return mantissa + "e" + (minus ? "-" : "") + exp;
}

// A tick label of a linear axis with ticks `step` apart: 200, 0.25, 2e-5, 1.5e6.
std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-6) return "0";
  if (std::fabs(v) >= 1e6 || step < 1e-4) return short_e(v);
  if (step >= 1) return format_number("%.0f", v);
  const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
  const int decimals = static_cast<int>(std::ceil(-std::log10(step) - 1e-9)) + (std::fabs(mantissa - 2.5) < 1e-9);
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// A tick label of a log axis at m times 10^k: 0.001, 500, 1e-5.
std::string log_label(int k, int m) {
  if (k >= -3 && k <= 5) return format_number("%g", m * std::pow(10.0, k));
  return std::to_string(m) + "e" + std::to_string(k);
}

struct Pt {
  double x, y;
};

// The drawable points of `s`, thinned to each bucket's lowest and highest point (in order) when long.
std::vector<Pt> drawable(const ChartSeries& s, bool log_y) {
  std::vector<Pt> all;
  for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
    if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!log_y || s.y[i] > 0)) all.push_back({s.x[i], s.y[i]});
  if (all.size() <= 2 * kBuckets) return all;
  std::vector<Pt> kept;
  const std::size_t per = (all.size() + kBuckets - 1) / kBuckets;
  for (std::size_t b = 0; b < all.size(); b += per) {
    const std::size_t e = std::min(all.size(), b + per);
    std::size_t lo = b, hi = b;
    for (std::size_t i = b; i < e; ++i) {
      if (all[i].y < all[lo].y) lo = i;
      if (all[i].y > all[hi].y) hi = i;
    }
    kept.push_back(all[std::min(lo, hi)]);
    if (lo != hi) kept.push_back(all[std::max(lo, hi)]);
  }
  return kept;
}

// The legend's items as (x, row) from the left edge, filling rows of `width`.
std::vector<std::pair<double, int>> legend_layout(const std::vector<ChartSeries>& series, int width) {
  std::vector<std::pair<double, int>> at;
  double x = 16;
  int row = 0;
  for (const auto& s : series) {
    const double w = 26 + kCharW * s.name.size() + 18;
    if (x > 16 && x + w > width - 8) x = 16, ++row;
    at.emplace_back(x, row);
    x += w;
  }
  return at;
}

}  // namespace

double nice_step(double x) {
  const double e = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 2.5, 5.0})
    if (m * e >= x * (1 - 1e-12)) return m * e;
  return 10 * e;
}

const char* series_colour(std::size_t i) {
  static const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                         "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return kColours[i % 8];
}

std::string svg_coord(double v) { return format_number("%.2f", v); }

std::string format_number(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string number_cell(double v, const char* f) { return std::isfinite(v) ? format_number(f, v) : "-"; }

std::string html_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

double ChartFrame::py(double y) const {
  const double v = log_y ? std::log10(y) : y;
  return top + (y1 - v) / (y1 - y0) * plot_h;
}

ChartFrame chart_frame(const std::vector<ChartSeries>& series, const ChartOptions& o) {
  ChartFrame f;
  f.log_y = o.log_y;
  const double inf = std::numeric_limits<double>::infinity();
  double xlo = inf, xhi = -inf, ylo = inf, yhi = -inf;
  std::vector<ChartSeries> shown;
  for (const auto& s : series) {
    const auto pts = drawable(s, o.log_y);
    if (!pts.empty()) shown.push_back(s);
    for (const auto& p : pts)
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x), ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
  }
  if (shown.empty()) xlo = 0, xhi = 1, ylo = 1, yhi = 10;
  if (xlo == xhi) xlo -= 1, xhi += 1;
  f.x0 = xlo, f.x1 = xhi;
  if (o.log_y) {
    f.y0 = std::floor(std::log10(ylo) + 1e-9);
    f.y1 = std::max(f.y0 + 1, std::ceil(std::log10(yhi) - 1e-9));
  } else {
    if (ylo == yhi) {
      const double d = yhi != 0 ? std::fabs(yhi) * 0.1 : 1;
      ylo -= d, yhi += d;
    }
    f.y_step = nice_step((yhi - ylo) / 5);
    f.y0 = std::floor(ylo / f.y_step + 1e-9) * f.y_step;
    f.y1 = std::ceil(yhi / f.y_step - 1e-9) * f.y_step;
  }
  const auto legend = legend_layout(shown, o.width);
  f.legend_rows = legend.empty() ? 0 : legend.back().second + 1;
  f.left = kLeft, f.top = kTop;
  f.plot_w = o.width - kLeft - kRight;
  f.plot_h = o.height - kTop - kAxisH;
  return f;
}

namespace {

std::string hline(double y, double x0, double x1, const char* stroke) {
  return "<line x1=\"" + svg_coord(x0) + "\" y1=\"" + svg_coord(y) + "\" x2=\"" + svg_coord(x1) + "\" y2=\"" + svg_coord(y) +
         "\" stroke=\"" + stroke + "\"/>\n";
}

std::string vline(double x, double y0, double y1, const char* stroke) {
  return "<line x1=\"" + svg_coord(x) + "\" y1=\"" + svg_coord(y0) + "\" x2=\"" + svg_coord(x) + "\" y2=\"" + svg_coord(y1) +
         "\" stroke=\"" + stroke + "\"/>\n";
}

// One y tick: grid line, tick mark and label.
void y_tick(std::string& o, const ChartFrame& f, double y, const std::string& label) {
  o += hline(y, f.left, f.left + f.plot_w, "#e6e6e6");
  o += hline(y, f.left - 5, f.left, "black");
  o += "<text x=\"" + svg_coord(f.left - 8) + "\" y=\"" + svg_coord(y + 4) + "\" text-anchor=\"end\">" + label + "</text>\n";
}

void y_axis(std::string& o, const ChartFrame& f) {
  if (!f.log_y) {
    const int n = static_cast<int>(std::round((f.y1 - f.y0) / f.y_step));
    for (int i = 0; i <= n; ++i) {
      const double v = f.y0 + i * f.y_step;
      y_tick(o, f, f.py(v), tick_label(v, f.y_step));
    }
    return;
  }
  // Decades (every other one past 10 of them); with at most two, 2 and 5 times each decade too.
  const int k0 = static_cast<int>(f.y0), k1 = static_cast<int>(f.y1), every = (k1 - k0 + 9) / 10;
  const bool fine = k1 - k0 <= 2;
  for (int k = k0; k <= k1; k += every)
    for (int m : {1, 2, 5}) {
      if ((m > 1 && !fine) || (m > 1 && k == k1)) continue;
      y_tick(o, f, f.py(m * std::pow(10.0, k)), log_label(k, m));
    }
}

void x_axis(std::string& o, const ChartFrame& f) {
  const double step = nice_step((f.x1 - f.x0) / 6);
  for (double k = std::ceil(f.x0 / step - 1e-9); k * step <= f.x1 + step * 1e-9; ++k) {
    const double x = f.px(k * step);
    o += vline(x, f.top, f.top + f.plot_h, "#e6e6e6");
    o += vline(x, f.top + f.plot_h, f.top + f.plot_h + 5, "black");
    o += "<text x=\"" + svg_coord(x) + "\" y=\"" + svg_coord(f.top + f.plot_h + 18) + "\" text-anchor=\"middle\">" +
         tick_label(k * step, step) + "</text>\n";
  }
  o += "<rect x=\"" + svg_coord(f.left) + "\" y=\"" + svg_coord(f.top) + "\" width=\"" + svg_coord(f.plot_w) + "\" height=\"" +
       svg_coord(f.plot_h) + "\" fill=\"none\" stroke=\"black\"/>\n";
}

void titles(std::string& o, const ChartFrame& f, const ChartOptions& opt) {
  o += "<text x=\"" + svg_coord(opt.width / 2.0) +
       "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" + html_escape(opt.title) +
       "</text>\n";
  o += "<text x=\"" + svg_coord(f.left + f.plot_w / 2) + "\" y=\"" + svg_coord(f.top + f.plot_h + 36) +
       "\" text-anchor=\"middle\">" + html_escape(opt.x_title) + "</text>\n";
  const std::string y_title = opt.y_title + (opt.log_y ? " (log scale)" : "");
  o += "<text transform=\"translate(14 " + svg_coord(f.top + f.plot_h / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       html_escape(y_title) + "</text>\n";
}

// The polyline (and markers) of series `i`, clipped to the plot area.
void series_lines(std::string& o, const ChartFrame& f, const ChartSeries& s, std::size_t i, const ChartOptions& opt) {
  const auto pts = drawable(s, opt.log_y);
  if (pts.empty()) return;
  const std::string colour = series_colour(i), name = html_escape(s.name);
  std::string xy;
  for (const auto& p : pts) xy += (xy.empty() ? "" : " ") + svg_coord(f.px(p.x)) + "," + svg_coord(f.py(p.y));
  o += "<polyline class=\"series\" points=\"" + xy + "\" fill=\"none\" stroke=\"" + colour +
       "\" stroke-width=\"1.6\" clip-path=\"url(#clip-" + html_escape(opt.id) + ")\"><title>" + name +
       "</title></polyline>\n";
  if (pts.size() > kMarkersUpTo) return;
  for (const auto& p : pts)
    o += "<circle class=\"marker\" cx=\"" + svg_coord(f.px(p.x)) + "\" cy=\"" + svg_coord(f.py(p.y)) + "\" r=\"2.5\" fill=\"" +
         colour + "\"><title>" + name + ": " + html_escape(opt.x_title) + " " + format_number("%.10g", p.x) + ", " +
         format_number("%.4g", p.y) + "</title></circle>\n";
}

void legend(std::string& o, const ChartFrame& f, const std::vector<ChartSeries>& shown, const ChartOptions& opt) {
  const auto at = legend_layout(shown, opt.width);
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const double x = at[i].first, y = f.top + f.plot_h + kAxisH + 14 + kRowH * at[i].second;
    o += "<line x1=\"" + svg_coord(x) + "\" y1=\"" + svg_coord(y - 4) + "\" x2=\"" + svg_coord(x + 20) + "\" y2=\"" + svg_coord(y - 4) +
         "\" stroke=\"" + series_colour(i) + "\" stroke-width=\"2.5\"/>\n";
    o += "<text x=\"" + svg_coord(x + 26) + "\" y=\"" + svg_coord(y) + "\">" + html_escape(shown[i].name) + "</text>\n";
  }
}

}  // namespace

std::string line_chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& opt) {
  std::vector<ChartSeries> shown;
  for (const auto& s : series)
    if (!drawable(s, opt.log_y).empty()) shown.push_back(s);
  if (shown.empty()) return "";
  const ChartFrame f = chart_frame(shown, opt);
  const int height = opt.height + static_cast<int>(kRowH) * f.legend_rows;
  const std::string id = html_escape(opt.id);
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" id=\"" + id + "\" width=\"" +
                  std::to_string(opt.width) + "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " +
                  std::to_string(opt.width) + " " + std::to_string(height) +
                  "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n<title>" + html_escape(opt.title) +
                  "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<defs><clipPath id=\"clip-" + id + "\"><rect x=\"" + svg_coord(f.left) + "\" y=\"" + svg_coord(f.top - 3) +
       "\" width=\"" + svg_coord(f.plot_w) + "\" height=\"" + svg_coord(f.plot_h + 6) + "\"/></clipPath></defs>\n";
  y_axis(o, f);
  x_axis(o, f);
  titles(o, f, opt);
  for (std::size_t i = 0; i < shown.size(); ++i) series_lines(o, f, shown[i], i, opt);
  legend(o, f, shown, opt);
  return o + "</svg>\n";
}

}  // namespace distill
