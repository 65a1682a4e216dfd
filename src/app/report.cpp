// The page of distill report (app/report.h): plots and tables as one HTML file.
#include "distill/app/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "distill/app/line_chart.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/text.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

// The series of `keys` over step from `rows`, those with at least one value.
std::vector<ChartSeries> series_of(const std::vector<std::map<std::string, double>>& rows,
                                   const std::vector<std::string>& keys, const std::string& strip = "") {
  std::vector<ChartSeries> out;
  for (const auto& k : keys) {
    ChartSeries s{k.substr(strip.size()), {}, {}};
    for (const auto& r : rows) {
      const auto v = r.find(k), step = r.find("step");
      if (v == r.end() || step == r.end()) continue;
      s.x.push_back(step->second);
      s.y.push_back(v->second);
    }
    if (!s.x.empty()) out.push_back(std::move(s));
  }
  return out;
}

// Log y when every drawable value is positive and they span more than a factor of 20.
bool wants_log(const std::vector<ChartSeries>& series) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) continue;
      if (s.y[i] <= 0) return false;
      lo = std::min(lo, s.y[i]), hi = std::max(hi, s.y[i]);
    }
  return hi > 20 * lo;
}

// One figure, or "" when no series has a point. `may_log`: a log y axis where wants_log says so.
std::string chart(const std::vector<ChartSeries>& series, const std::string& id, const std::string& title,
                  const std::string& y_title, bool may_log = true) {
  ChartOptions o;
  o.id = id, o.title = title, o.y_title = y_title;
  o.log_y = may_log && wants_log(series);
  const std::string svg = line_chart_svg(series, o);
  return svg.empty() ? "" : "<figure>\n" + svg + "</figure>\n";
}

// Whether `key` of the rows takes more than one value (a scheduled alpha, beta or temperature).
bool varies(const std::vector<std::map<std::string, double>>& rows, const std::string& key) {
  std::set<double> seen;
  for (const auto& r : rows)
    if (r.count(key) && std::isfinite(r.at(key))) seen.insert(r.at(key));
  return seen.size() > 1;
}

// Dev errors (lower is better: KL, MSE, losses) and dev scores, by name.
bool is_dev_error(const std::string& key) {
  const std::set<std::string> words = {"kl", "mse", "mae", "rmse", "loss", "ce", "risk", "error"};
  for (const auto& w : split(key, '_'))
    if (words.count(w)) return true;
  return false;
}

std::string dev_charts(const MetricsLog& m) {
  std::set<std::string> keys;
  for (const auto& r : m.eval)
    for (const auto& [k, v] : r)
      if (k.rfind("dev_", 0) == 0) keys.insert(k);
  std::vector<std::string> scores, errors;
  for (const auto& k : keys) (is_dev_error(k) ? errors : scores).push_back(k);
  const std::string split = m.eval_split.empty() ? "dev" : m.eval_split;
  return chart(series_of(m.eval, scores, "dev_"), "plot-dev", "evaluation on " + split, "score", false) +
         chart(series_of(m.eval, errors, "dev_"), "plot-dev-errors", "evaluation on " + split + ": divergences",
               "value");
}

std::string training_charts(const MetricsLog& m) {
  const auto& t = m.train;
  std::vector<std::string> schedule;
  for (const char* k : {"alpha", "beta", "temperature"})
    if (varies(t, k)) schedule.push_back(k);
  return chart(series_of(t, {"loss", "hard_ce", "soft_kl", "hidden", "attention"}), "plot-loss", "loss terms", "loss") +
         dev_charts(m) + chart(series_of(t, {"lr"}), "plot-lr", "learning rate", "learning rate", false) +
         chart(series_of(t, schedule), "plot-schedule", "scheduled distillation weights", "value", false) +
         chart(series_of(t, {"samples_per_s"}), "plot-throughput", "throughput", "samples / s", false) +
         chart(series_of(t, {"input_wait_share", "comm_wait_share"}), "plot-waits",
               "share of each logging window spent waiting", "share", false) +
         chart(series_of(t, {"grad_norm"}), "plot-grad-norm", "gradient norm", "norm");
}

// A table with a header row; the first `text_cols` columns are text (left-aligned), the rest numbers.
std::string table_html(const std::vector<std::vector<std::string>>& rows, const std::string& cls,
                       std::size_t text_cols = 1) {
  std::string o = "<table class=\"" + cls + "\">\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    o += "<tr>";
    for (std::size_t k = 0; k < rows[i].size(); ++k)
      o += (i == 0          ? "<th>"
            : k < text_cols ? "<td class=\"t\">"
                            : "<td>") +
           html_escape(rows[i][k]) + (i == 0 ? "</th>" : "</td>");
    o += "</tr>\n";
  }
  return o + "</table>\n";
}

// The eval table: the columns some row has, "-" where a row has none.
std::string eval_html(const ReportInputs& in) {
  struct Col {
    const char* head;
    double EvalRow::*v;
    const char* f;
  };
  const Col cols[] = {{"examples", &EvalRow::examples, "%.0f"},
                      {"accuracy", &EvalRow::accuracy, "%.4f"},
                      {"macro-F1", &EvalRow::macro_f1, "%.4f"},
                      {"MCC", &EvalRow::mcc, "%.4f"},
                      {"teacher accuracy", &EvalRow::teacher_accuracy, "%.4f"},
                      {"agreement", &EvalRow::agreement, "%.4f"},
                      {"transfer risk", &EvalRow::transfer_risk, "%.4f"},
                      {"KL(teacher || student)", &EvalRow::kl, "%.4g"},
                      {"MSE", &EvalRow::mse, "%.4g"},
                      {"Pearson", &EvalRow::pearson, "%.4f"},
                      {"Spearman", &EvalRow::spearman, "%.4f"},
                      {"teacher MSE", &EvalRow::teacher_mse, "%.4g"},
                      {"teacher Pearson", &EvalRow::teacher_pearson, "%.4f"},
                      {"MSE(teacher, student)", &EvalRow::mse_teacher_student, "%.4g"},
                      {"Pearson(teacher, student)", &EvalRow::pearson_teacher_student, "%.4f"}};
  const bool files = in.eval_about.size() > 1;
  std::vector<std::vector<std::string>> t(1);
  if (files) t[0].push_back("file");
  t[0].push_back("data : split");
  std::vector<const Col*> shown;
  for (const auto& c : cols)
    if (std::any_of(in.evals.begin(), in.evals.end(), [&](const EvalRow& r) { return std::isfinite(r.*c.v); }))
      shown.push_back(&c), t[0].push_back(c.head);
  for (const auto& r : in.evals) {
    t.emplace_back();
    if (files) t.back().push_back(fs::path(r.file).filename().string());
    t.back().push_back(r.data + " : " + r.split);
    for (const auto* c : shown) t.back().push_back(number_cell(r.*(c->v), c->f));
  }
  std::string o = table_html(t, "eval", files ? 2 : 1);
  o += "<ul class=\"about\">\n";
  for (const auto& [f, a] : in.eval_about)
    o += "<li><code>" + html_escape(f) + "</code>" + (a.empty() ? "" : ": " + html_escape(a)) + "</li>\n";
  return o + "</ul>\n";
}

// curve_svg's drawing as one of the page's plots, with its table.
std::string curve_html(const CurveReport& c) {
  std::string svg = curve_svg(c.series, c.title, c.fit_below);
  svg.replace(0, 4, "<svg class=\"plot\" id=\"plot-curve\"");
  svg.insert(svg.find(">\n") + 2, "<title>" + html_escape(c.title) + "</title>\n");
  std::string fits = "<ul class=\"about\">\n";
  for (const auto& s : c.series)
    fits += "<li>" + html_escape(s.name) + ": " +
            html_escape(s.fit.ok ? str("risk ~ ", format_number("%.4g", s.fit.c), " (log n / n)^", format_number("%.3f", s.fit.kappa),
                                       ", ", format_number("%g", s.fit.level * 100), "% interval of kappa [",
                                       format_number("%.3f", s.fit.kappa_low), ", ", format_number("%.3f", s.fit.kappa_high), "], ",
                                       s.fit.points, " points",
                                       c.fit_below > 0 ? " with n < " + format_number("%g", c.fit_below) : "")
                                 : "no fit: " + s.fit.why) +
            "</li>\n";
  return "<figure>\n" + svg + "</figure>\n" + table_html(c.table, "curve", 0) + fits + "</ul>\n";
}

const char* const kStyle = R"(body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1800px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
p.generated { color: #666; margin-top: 0; } code { font-size: 90%; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; } figure { display: inline-block; margin: 0; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; } th { background: #f2f2f2; }
td { text-align: right; font-variant-numeric: tabular-nums; } td.t { text-align: left; }
ul.about { color: #555; font-size: 13px; }
)";

}  // namespace

std::string report_html(const ReportInputs& in) {
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>distill report: " +
                  html_escape(in.run_dir) + "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n";
  o += "<h1>distill report: <code>" + html_escape(in.run_dir) +
       "</code></h1>\n<p class=\"generated\">Generated by "
       "<code>distill report</code> from ";
  for (std::size_t i = 0; i < in.sources.size(); ++i) o += (i ? ", " : "") + html_escape(in.sources[i]);
  o += ".</p>\n";
  if (!in.summary.empty()) {
    std::vector<std::vector<std::string>> t = {{"train_summary.json", "value"}};
    for (const auto& [k, v] : in.summary) t.push_back({k, v});
    o += "<section id=\"summary\">\n<h2>Summary</h2>\n" + table_html(t, "summary", 2) + "</section>\n";
  }
  if (!in.evals.empty()) o += "<section id=\"evaluation\">\n<h2>Evaluation</h2>\n" + eval_html(in) + "</section>\n";
  if (in.metrics) {
    const std::string plots = training_charts(*in.metrics);
    if (!plots.empty())
      o += "<section id=\"training\">\n<h2>Training</h2>\n<div class=\"plots\">\n" + plots + "</div>\n</section>\n";
  }
  if (in.curve) o += "<section id=\"curve\">\n<h2>Transfer curve</h2>\n" + curve_html(*in.curve) + "</section>\n";
  return o + "</body>\n</html>\n";
}

std::string write_report(const std::string& run_dir, const std::vector<std::string>& evals, const std::string& out) {
  const std::string path = out.empty() ? (fs::path(run_dir) / "report.html").string() : out;
  const std::string page = report_html(read_report_inputs(run_dir, evals));
  if (!fs::path(path).parent_path().empty()) fs::create_directories(fs::path(path).parent_path());
  write_file_atomic(path, page);
  return path;
}

}  // namespace distill