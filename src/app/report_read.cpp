// The readers of distill report (app/report.h): metrics.jsonl, eval JSON files, curve.json,
// train_summary.json and the run directory that holds them.
#include "distill/app/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "distill/app/line_chart.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/text.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::json;

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
  r.mse = num(s, "mse");
  r.pearson = num(s, "pearson");
  r.spearman = num(s, "spearman");
  r.teacher_mse = num(s, "teacher_mse");
  r.teacher_pearson = num(s, "teacher_pearson");
  r.mse_teacher_student = num(s, "mse_teacher_student");
  r.pearson_teacher_student = num(s, "pearson_teacher_student");
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

// The table of curve.json: n, steps, final loss, and per set risk, KL and accuracy.
std::vector<std::vector<std::string>> curve_table(const Json& j, const std::vector<CurveSeries>& series) {
  std::vector<std::vector<std::string>> t(1, {"n", "steps", "final loss"});
  for (const auto& s : series)
    for (const char* h : {"risk", "KL", "accuracy"}) t[0].push_back(std::string(h) + " " + s.name);
  for (const auto& p : j["points"]) {
    t.push_back({number_cell(num(p, "n"), "%.0f"), number_cell(num(p, "steps"), "%.0f"), number_cell(num(p, "final_loss"), "%.4g")});
    if (!p.contains("sets")) continue;
    for (const auto& s : p["sets"])
      t.back().insert(t.back().end(), {number_cell(num(s, "transfer_risk")), number_cell(num(s, "kl_teacher_student"), "%.4g"),
                                       number_cell(num(s, "accuracy"))});
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
      t = format_number("%.6g", v.get<double>());
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

}  // namespace distill
