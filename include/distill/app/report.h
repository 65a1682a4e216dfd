// distill report: one self-contained HTML page of a run directory (inline CSS and SVG, no scripts, no
// external links): the training curves of metrics.jsonl, train_summary.json, eval JSON files and the
// transfer curve of curve.json, whichever the directory holds. Torch-free and deterministic: the same
// inputs give the same bytes.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "distill/app/curve_fit.h"

namespace distill {

// metrics.jsonl: train lines (with "loss") and evaluation lines (with "eval_split"), each as its
// numeric values by key (null and non-numeric values left out). Other lines are ignored.
struct MetricsLog {
  std::vector<std::map<std::string, double>> train, eval;
  std::string eval_split;  // of the first evaluation line
};
// Throws DataError naming `path`, the line number and what was expected when a line is not a JSON
// object or a train or evaluation line has no numeric "step".
MetricsLog parse_metrics(const std::string& text, const std::string& path);

// One evaluated set of a `distill eval --json` file. Absent or null values are NaN.
struct EvalRow {
  std::string file, data, split;
  double examples = 0, accuracy = 0, teacher_accuracy = 0, agreement = 0, transfer_risk = 0, kl = 0, macro_f1 = 0,
         mcc = 0;
  // Regression sets (Note [regression] in data/dataset.h).
  double mse = 0, pearson = 0, spearman = 0, teacher_mse = 0, teacher_pearson = 0, mse_teacher_student = 0,
         pearson_teacher_student = 0;
};
// One eval file: a single set, {"sets": [...]}, or an array of either. `about` gets the student,
// teacher and precision it names ("student .../model.safetensors, teacher ..., bf16").
// Throws DataError naming `path` when it is none of those.
std::vector<EvalRow> parse_eval(const std::string& text, const std::string& path, std::string* about = nullptr);

// A curve.json of `distill curve`: the series as curve_svg draws them (fits made again from the
// points with fit_below), and its table.
struct CurveReport {
  std::string title;
  double fit_below = 0;
  std::vector<CurveSeries> series;
  std::vector<std::vector<std::string>> table;  // header row first
};
// Throws DataError naming `path` when a field curve.json always has is missing.
CurveReport parse_curve(const std::string& text, const std::string& path);

struct ReportInputs {
  std::string run_dir;
  std::vector<std::string> sources;  // what was read, for the page's generated-by line
  std::optional<MetricsLog> metrics;
  std::vector<std::pair<std::string, std::string>> summary;  // train_summary.json, as text
  std::vector<EvalRow> evals;
  std::vector<std::pair<std::string, std::string>> eval_about;  // eval file, what it evaluated
  std::optional<CurveReport> curve;
};

// Reads what `run_dir` holds (metrics.jsonl, train_summary.json, curve.json, eval*.json) and the
// `evals` files. Throws ConfigError naming the directory and the expected files when it holds none
// of them and `evals` is empty, or when a file of `evals` does not exist.
ReportInputs read_report_inputs(const std::string& run_dir, const std::vector<std::string>& evals);

// The page. Pure: the same inputs give the same bytes (no time stamps).
std::string report_html(const ReportInputs& in);

// Writes the page of `run_dir` to `out` (default `run_dir`/report.html) atomically and returns the
// path written.
std::string write_report(const std::string& run_dir, const std::vector<std::string>& evals,
                         const std::string& out = "");

}  // namespace distill
