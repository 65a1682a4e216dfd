// A generic SVG line chart: series of (x, y) points drawn with grid, ticks, axis titles and a legend,
// on a linear or log10 y axis. Torch-free and deterministic: the same inputs give the same bytes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace distill {

// One named line of a chart. Points whose x or y is not finite are skipped.
struct ChartSeries {
  std::string name;
  std::vector<double> x, y;  // same length
};

// What line_chart_svg draws around the series: ids, titles, the y scale and the size in px.
struct ChartOptions {
  std::string id;     // the svg's id (unique on a page; its clip path is "clip-" + id)
  std::string title;  // drawn above the plot and the svg's <title>
  std::string x_title = "step";
  std::string y_title;
  bool log_y = false;  // log10 y axis; then points with y <= 0 are skipped too
  int width = 560, height = 300;
};

// Where a chart's plot area lies and how data map to pixels. The x range is the data's; the y range
// is widened to whole tick steps (linear) or whole decades (log).
struct ChartFrame {
  double left = 0, top = 0, plot_w = 0, plot_h = 0;  // plot area, px
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;             // data range; y in log10 units when log_y
  double y_step = 1;                                 // linear y tick step
  bool log_y = false;
  int legend_rows = 0;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * plot_w; }
  double py(double y) const;  // y in data units (not log10)
};

// The frame line_chart_svg draws `series` in: the plot area spans x = 72 to width - 28 and y = 34 to
// height - 46; the legend adds legend_rows rows of 18 px below that (the svg is height + 18 x rows tall).
ChartFrame chart_frame(const std::vector<ChartSeries>& series, const ChartOptions& o);

// An <svg class="plot" id="o.id"> line chart: one polyline per series (class="series", with a
// <title> of its name; circles at the points when a series has at most 40), grid, ticks, axis
// titles and a legend. Long series are thinned to the lowest and highest point of each of 1000
// buckets. Empty when no series has a drawable point. Text is escaped.
std::string line_chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& o);

// The smallest of 1, 2, 2.5, 5 (times a power of ten) that is >= x > 0: a tick step.
double nice_step(double x);
// The colour of series i (8 colours, repeating), as #rrggbb; shared by every plot.
const char* series_colour(std::size_t i);
// A pixel coordinate as SVG writes it: 2 decimals.
std::string svg_coord(double v);
// `v` printed by the printf format `f` (one double conversion, at most 63 characters).
std::string format_number(const char* f, double v);

// A table cell: `v` by `f`, or "-" when it is not finite (absent values are NaN).
std::string number_cell(double v, const char* f = "%.4f");

// `s` with & < > " ' replaced by their character references: safe as HTML or SVG text and as a
// quoted attribute value.
std::string html_escape(const std::string& s);

}  // namespace distill
