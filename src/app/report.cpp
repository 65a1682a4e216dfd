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

// ---- reading the run directory -------------------------------------------------------------------

namespace {

using Json = nlohmann::json;

std::string format(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// The numeric values of a JSON object by key (null, strings and other values left out).
std::map<std::string, double> numbers(const Json& j) {
  std::map<std::string, double> v;
  for (const auto& [k, x] : j.items())
    if (x.is_number()) v[k] = x.get<double>();
  return v;
}

double num(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

std::string text(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Json parse_json(const std::string& s, const std::string& path, const char* expected) {
  try {
    return Json::parse(s);
  } catch (const Json::exception& e) {
    throw DataError(str(path, ": not JSON (", e.what(), "); expected ", expected));
  }
}

}  // namespace

MetricsLog parse_metrics(const std::string& content, const std::string& path) {
  MetricsLog log;
  std::size_t line_no = 0, begin = 0;
  while (begin < content.size()) {
    std::size_t end = content.find('\n', begin);
    if (end == std::string::npos) end = content.size();
    const std::string line = content.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::exception& e) {
      throw DataError(str(path, " line ", line_no, ": not JSON (", e.what(), "); expected one JSON object per line"));
    }
    DISTILL_CHECK(j.is_object(), DataError, path, " line ", line_no, ": a JSON ", j.type_name(),
                  "; expected one JSON object per line");
    const bool train = j.contains("loss"), eval = j.contains("eval_split");
    if (!train && !eval) continue;
    DISTILL_CHECK(j.contains("step") && j["step"].is_number(), DataError, path, " line ", line_no, ": a ",
                  train ? "train" : "evaluation", " line without a numeric \"step\"");
    if (train) {
      log.train.push_back(numbers(j));
    } else {
      if (log.eval.empty()) log.eval_split = text(j, "eval_split");
      log.eval.push_back(numbers(j));
    }
  }
  return log;
}

namespace {

EvalRow eval_row(const Json& s, const std::string& file) {
  EvalRow r;
  r.file = file;
  r.data = text(s, "data");
  r.split = text(s, "split");
  r.examples = num(s, "examples");
  r.accuracy = num(s, "accuracy");
  r.teacher_accuracy = num(s, "teacher_accuracy");
  r.agreement = num(s, "agreement");
  r.transfer_risk = num(s, "transfer_risk");
  r.kl = num(s, "kl_teacher_student");
  r.macro_f1 = num(s, "macro_f1");
  r.mcc = num(s, "mcc");
  return r;
}

// A set's row, then with several teachers (its "teachers") one row per teacher: its accuracy and
// the student's agreement, risk and KL against it ("test vs teacher 2").
void add_set_rows(const Json& s, const std::string& file, std::vector<EvalRow>& rows) {
  const EvalRow set = eval_row(s, file);
  rows.push_back(set);
  const auto it = s.find("teachers");
  if (it == s.end() || !it->is_array()) return;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const Json& t = (*it)[i];
    if (!t.is_object()) continue;
    EvalRow r = eval_row(t, file);
    r.data = set.data;
    r.split = set.split + " vs teacher " + std::to_string(i + 1);
    r.examples = set.examples;
    rows.push_back(r);
  }
}

// The evaluated sets of one eval object (a single set or {"sets": [...]}).
void eval_object(const Json& j, const std::string& path, std::vector<EvalRow>& rows, std::vector<std::string>& about) {
  DISTILL_CHECK(j.is_object(), DataError, path, ": holds a JSON ", j.type_name(),
                " where distill eval --json writes an object");
  std::string a = text(j, "student").empty() ? "" : "student " + text(j, "student");
  if (!text(j, "teacher").empty()) a += (a.empty() ? "teacher " : ", teacher ") + text(j, "teacher");
  if (!text(j, "precision").empty()) a += (a.empty() ? "" : ", ") + text(j, "precision");
  if (!a.empty()) about.push_back(a);
  if (j.contains("sets")) {
    DISTILL_CHECK(j["sets"].is_array(), DataError, path, ": \"sets\" is not an array");
    for (const auto& s : j["sets"]) {
      DISTILL_CHECK(s.is_object() && s.contains("split"), DataError, path,
                    ": an entry of \"sets\" without a \"split\"");
      add_set_rows(s, path, rows);
    }
    return;
  }
  DISTILL_CHECK(j.contains("split") || j.contains("agreement") || j.contains("accuracy"), DataError, path,
                ": neither \"sets\" nor a \"split\" with \"accuracy\" or \"agreement\"; expected the output of "
                "distill eval --json");
  add_set_rows(j, path, rows);
}

}  // namespace

std::vector<EvalRow> parse_eval(const std::string& content, const std::string& path, std::string* about) {
  const Json j = parse_json(content, path, "the output of distill eval --json");
  std::vector<EvalRow> rows;
  std::vector<std::string> abouts;
  if (j.is_array()) {
    for (const auto& e : j) eval_object(e, path, rows, abouts);
  } else {
    eval_object(j, path, rows, abouts);
  }
  if (about) {
    about->clear();
    for (const auto& a : abouts) *about += (about->empty() ? "" : "; ") + a;
  }
  return rows;
}

namespace {

std::string cell(double v, const char* f = "%.4f") { return std::isfinite(v) ? format(f, v) : "-"; }

// The table of curve.json: n, steps, final loss, and per set risk, KL and accuracy.
std::vector<std::vector<std::string>> curve_table(const Json& j, const std::vector<CurveSeries>& series) {
  std::vector<std::vector<std::string>> t(1, {"n", "steps", "final loss"});
  for (const auto& s : series)
    for (const char* h : {"risk", "KL", "accuracy"}) t[0].push_back(std::string(h) + " " + s.name);
  for (const auto& p : j["points"]) {
    t.push_back({cell(num(p, "n"), "%.0f"), cell(num(p, "steps"), "%.0f"), cell(num(p, "final_loss"), "%.4g")});
    if (!p.contains("sets")) continue;
    for (const auto& s : p["sets"])
      t.back().insert(t.back().end(), {cell(num(s, "transfer_risk")), cell(num(s, "kl_teacher_student"), "%.4g"),
                                       cell(num(s, "accuracy"))});
  }
  return t;
}

}  // namespace

CurveReport parse_curve(const std::string& content, const std::string& path) {
  const Json j = parse_json(content, path, "the curve.json of distill curve");
  DISTILL_CHECK(j.is_object() && j.contains("points") && j["points"].is_array(), DataError, path,
                ": no \"points\" array; expected the curve.json of distill curve");
  CurveReport c;
  c.fit_below = std::isfinite(num(j, "fit_below")) ? num(j, "fit_below") : 0;
  c.title =
      "transfer risk of " + fs::path(text(j, "data")).filename().string() + ":" + text(j, "train_split") + " subsets";
  for (const auto& p : j["points"]) {
    DISTILL_CHECK(p.is_object() && p.contains("n") && p.contains("sets") && p["sets"].is_array(), DataError, path,
                  ": a point without \"n\" and \"sets\"");
    const auto& sets = p["sets"];
    if (c.series.empty())
      for (const auto& s : sets)
        c.series.push_back({fs::path(text(s, "data")).filename().string() + " : " + text(s, "split"), {}, {}});
    DISTILL_CHECK(sets.size() == c.series.size(), DataError, path, ": the point n = ", p["n"].dump(), " has ",
                  sets.size(), " sets, the first point ", c.series.size());
    for (std::size_t k = 0; k < sets.size(); ++k)
      c.series[k].points.push_back({num(p, "n"), num(sets[k], "transfer_risk")});
  }
  for (auto& s : c.series) s.fit = fit_power(s.points, c.fit_below);
  c.table = curve_table(j, c.series);
  return c;
}

namespace {

// train_summary.json as (key, text) rows: numbers as %.6g (integers whole), nested values as JSON.
std::vector<std::pair<std::string, std::string>> summary_rows(const Json& j, const std::string& path) {
  DISTILL_CHECK(j.is_object(), DataError, path, ": a JSON ", j.type_name(), "; expected an object");
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& [k, v] : j.items()) {
    std::string t;
    if (v.is_string()) {
      t = v.get<std::string>();
    } else if (v.is_number_integer()) {
      t = v.dump();
    } else if (v.is_number()) {
      t = format("%.6g", v.get<double>());
    } else {
      t = v.dump();
    }
    rows.emplace_back(k, t);
  }
  return rows;
}

// RUN_DIR/eval*.json, sorted by name.
std::vector<std::string> eval_files_in(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("eval", 0) == 0 && e.path().extension() == ".json")
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void read_evals(ReportInputs& in, const std::vector<std::string>& given) {
  std::vector<std::string> files = eval_files_in(in.run_dir);
  std::set<std::string> seen;
  for (const auto& f : files) seen.insert(fs::weakly_canonical(f).string());
  for (const auto& f : given) {
    DISTILL_CHECK(path_exists(f), ConfigError, "distill report: --eval ", f, " does not exist");
    if (seen.insert(fs::weakly_canonical(f).string()).second) files.push_back(f);
  }
  for (const auto& f : files) {
    std::string about;
    const auto rows = parse_eval(read_file(f), f, &about);
    in.evals.insert(in.evals.end(), rows.begin(), rows.end());
    in.eval_about.emplace_back(f, about);
    in.sources.push_back(fs::path(f).filename().string());
  }
}

}  // namespace

ReportInputs read_report_inputs(const std::string& run_dir, const std::vector<std::string>& evals) {
  DISTILL_CHECK(fs::is_directory(run_dir), ConfigError, "distill report: ", run_dir, " is not a directory");
  ReportInputs in;
  in.run_dir = run_dir;
  const auto at = [&](const char* name) { return (fs::path(run_dir) / name).string(); };
  if (path_exists(at("metrics.jsonl"))) {
    in.metrics = parse_metrics(read_file(at("metrics.jsonl")), at("metrics.jsonl"));
    in.sources.push_back(str("metrics.jsonl (", in.metrics->train.size(), " train lines, ", in.metrics->eval.size(),
                             " evaluation lines)"));
  }
  if (path_exists(at("train_summary.json"))) {
    in.summary = summary_rows(parse_json(read_file(at("train_summary.json")), at("train_summary.json"), "an object"),
                              at("train_summary.json"));
    in.sources.push_back("train_summary.json");
  }
  if (path_exists(at("curve.json"))) {
    in.curve = parse_curve(read_file(at("curve.json")), at("curve.json"));
    in.sources.push_back("curve.json");
  }
  read_evals(in, evals);
  DISTILL_CHECK(!in.sources.empty(), ConfigError, "distill report: ", run_dir,
                " holds none of metrics.jsonl (a training run), train_summary.json, curve.json (distill curve) "
                "or eval*.json (distill eval --json), and no --eval file was given: nothing to report");
  return in;
}

// ---- the page -------------------------------------------------------------------------------------

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
                      {"KL(teacher || student)", &EvalRow::kl, "%.4g"}};
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
    for (const auto* c : shown) t.back().push_back(cell(r.*(c->v), c->f));
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
            html_escape(s.fit.ok ? str("risk ~ ", format("%.4g", s.fit.c), " (log n / n)^", format("%.3f", s.fit.kappa),
                                       ", ", format("%g", s.fit.level * 100), "% interval of kappa [",
                                       format("%.3f", s.fit.kappa_low), ", ", format("%.3f", s.fit.kappa_high), "], ",
                                       s.fit.points, " points",
                                       c.fit_below > 0 ? " with n < " + format("%g", c.fit_below) : "")
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