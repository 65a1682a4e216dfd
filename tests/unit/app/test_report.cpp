// distill report: the line chart against closed-form pixel positions, the readers of the run
// directory's files, and the page (its plots, tables, escaping, errors and determinism).
#include "distill/app/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "distill/app/line_chart.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "test_util.h"

using namespace distill;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

int occurrences(const std::string& s, const std::string& what) {
  int k = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++k;
  return k;
}

// The points="..." of every polyline of class "series", in order.
std::vector<std::string> polylines(const std::string& svg) {
  std::vector<std::string> out;
  const std::regex re("<polyline class=\"series\" points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

ChartOptions options(const std::string& id, bool log_y = false) {
  ChartOptions o;
  o.id = id;
  o.title = "t";
  o.y_title = "y";
  o.log_y = log_y;
  o.width = 560;
  o.height = 300;
  return o;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A run directory with every input the page shows: train lines (one with a null loss), evaluation
// lines, a summary, an eval file of two sets and a curve.json.
std::string full_run(const std::string& name) {
  const auto dir = test::temp_dir(name);
  std::string m;
  for (int s = 10; s <= 100; s += 10) {
    m += "{\"step\":" + std::to_string(s) + ",\"epoch\":0,\"wall_time\":" + std::to_string(1700000000 + s) +
         ",\"loss\":" + (s == 50 ? std::string("null") : std::to_string(1.0 / s)) +
         ",\"hard_ce\":0.5,\"soft_kl\":" + std::to_string(2.0 / s) +
         ",\"lr\":0.001,\"grad_norm\":1.5,\"samples_per_s\":300,\"alpha\":0.5,\"beta\":" + std::to_string(0.01 * s) +
         ",\"temperature\":2,\"input_wait_share\":0.1,\"comm_wait_share\":0.2}\n";
    if (s % 50 == 0)
      m += "{\"step\":" + std::to_string(s) +
           ",\"wall_time\":1700000100,\"eval_split\":\"dev\",\"dev_accuracy\":0.8,\"dev_mcc\":0.6,\"dev_kl\":0.05}\n";
  }
  write(dir + "/metrics.jsonl", m);
  write(dir + "/train_summary.json", R"({"steps": 100, "final_loss": 0.01, "checkpoint": "ck<1>", "ranks": 2})");
  write(dir + "/eval.json", R"({"sets": [
    {"data": "a.h5", "split": "test", "examples": 400, "labeled": 400, "accuracy": 0.75, "teacher_accuracy": 0.7,
     "agreement": 0.9, "transfer_risk": 0.1, "kl_teacher_student": 0.04, "macro_f1": 0.74, "mcc": 0.5},
    {"data": "b.h5", "split": "test", "examples": 100, "labeled": 0, "accuracy": null, "teacher_accuracy": null,
     "agreement": 0.8, "transfer_risk": 0.2, "kl_teacher_student": 0.08}],
    "student": "s/model.safetensors", "teacher": "t/model.safetensors", "precision": "bf16"})");
  write(dir + "/curve.json", R"({"data": "x/transfer.h5", "train_split": "train", "fit_below": 0, "points": [
    {"n": 5, "steps": 10, "final_loss": 0.1, "sets": [{"data": "x/transfer.h5", "split": "test",
      "transfer_risk": 0.4, "kl_teacher_student": 0.2, "accuracy": 0.6}]},
    {"n": 10, "steps": 10, "final_loss": 0.05, "sets": [{"data": "x/transfer.h5", "split": "test",
      "transfer_risk": 0.3, "kl_teacher_student": 0.1, "accuracy": null}]},
    {"n": 20, "steps": 10, "final_loss": 0.01, "sets": [{"data": "x/transfer.h5", "split": "test",
      "transfer_risk": 0.2, "kl_teacher_student": 0.05, "accuracy": 0.7}]}]})");
  return dir;
}

}  // namespace

TEST(LineChart, MapsValuesToClosedFormCoordinates) {
  // Plot area x 72..532, y 34..254; x range 0..100; y 0..10 in ticks of 2 (nice step of 10 / 5).
  const std::vector<ChartSeries> s = {{"a", {0, 50, 100}, {0, 5, 10}}, {"b", {25, 75}, {2, 7}}};
  const auto o = options("lin");
  const ChartFrame f = chart_frame(s, o);
  EXPECT_EQ(f.left, 72);
  EXPECT_EQ(f.plot_w, 460);
  EXPECT_EQ(f.top, 34);
  EXPECT_EQ(f.plot_h, 220);
  EXPECT_EQ(f.y0, 0);
  EXPECT_EQ(f.y1, 10);
  EXPECT_EQ(f.y_step, 2);
  const auto svg = line_chart_svg(s, o);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "72.00,254.00 302.00,144.00 532.00,34.00");
  // x = 72 + 460 x / 100, y = 254 - 22 y.
  EXPECT_EQ(lines[1], "187.00,210.00 417.00,100.00");
  for (const char* label : {">0</text>", ">2</text>", ">10</text>", ">40</text>", ">100</text>"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  EXPECT_EQ(occurrences(svg, "class=\"plot\""), 1);
  EXPECT_NE(svg.find("id=\"lin\""), std::string::npos);
  EXPECT_NE(svg.find("<title>t</title>"), std::string::npos);
}

TEST(LineChart, LogAxisSpansWholeDecades) {
  // y 0.01..10 -> decades -2..1: y = 34 + 220 (1 - log10 y) / 3.
  const std::vector<ChartSeries> s = {{"a", {1, 2, 3}, {0.01, 0.1, 10}}};
  const auto o = options("log", true);
  const ChartFrame f = chart_frame(s, o);
  EXPECT_EQ(f.y0, -2);
  EXPECT_EQ(f.y1, 1);
  const auto lines = polylines(line_chart_svg(s, o));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "72.00,254.00 302.00,180.67 532.00,34.00");
}

TEST(LineChart, SkipsNonFiniteValues) {
  const std::vector<ChartSeries> s = {{"a", {0, 1, 2, 3, 4, kNaN}, {1, kNaN, 3, kInf, 5, 2}},
                                      {"none", {0, 1}, {kNaN, -kInf}}};
  const auto o = options("skip");
  const ChartFrame f = chart_frame(s, o);
  EXPECT_EQ(f.x1, 4);
  EXPECT_EQ(f.y0, 1);
  EXPECT_EQ(f.y1, 5);
  EXPECT_EQ(f.legend_rows, 1);
  const auto svg = line_chart_svg(s, o);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u) << "the series without a finite point is left out";
  EXPECT_EQ(occurrences(lines[0], ","), 3);
  EXPECT_EQ(svg.find(">none<"), std::string::npos) << "and has no legend entry";
  // On a log axis, values <= 0 cannot be placed either.
  const auto log_lines = polylines(line_chart_svg({{"a", {0, 1, 2}, {0, -1, 10}}}, options("log", true)));
  ASSERT_EQ(log_lines.size(), 1u);
  EXPECT_EQ(occurrences(log_lines[0], ","), 1);
  EXPECT_EQ(line_chart_svg({{"a", {0, 1}, {kNaN, kNaN}}}, o), "") << "no drawable point: no chart";
}

TEST(LineChart, EscapesText) {
  auto o = options("e&\"x");
  o.title = "<script>alert(1)</script>";
  o.y_title = "a & b";
  const auto svg = line_chart_svg({{"x<y & \"z\" 'w'", {0, 1}, {0, 1}}}, o);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(svg.find("x&lt;y &amp; &quot;z&quot; &#39;w&#39;"), std::string::npos);
  EXPECT_NE(svg.find("a &amp; b"), std::string::npos);
  EXPECT_NE(svg.find("id=\"e&amp;&quot;x\""), std::string::npos);
}

TEST(LineChart, ThinsLongSeriesKeepingExtremes) {
  ChartSeries s{"long", {}, {}};
  for (int i = 0; i < 100000; ++i) s.x.push_back(i), s.y.push_back(i == 31337 ? 100 : i == 70001 ? -100 : 0);
  const auto o = options("thin");
  const auto lines = polylines(line_chart_svg({s}, o));
  ASSERT_EQ(lines.size(), 1u);
  const int points = occurrences(lines[0], ",");
  EXPECT_LE(points, 2000);
  EXPECT_GE(points, 1000);
  const ChartFrame f = chart_frame({s}, o);
  const auto at = [&](double x, double y) {
    char b[64];
    std::snprintf(b, sizeof b, "%.2f,%.2f", f.px(x), f.py(y));
    return std::string(b);
  };
  EXPECT_NE(lines[0].find(at(31337, 100)), std::string::npos) << "the spike is kept";
  EXPECT_NE(lines[0].find(at(70001, -100)), std::string::npos) << "the dip is kept";
}

TEST(LineChart, LegendWrapsIntoRowsBelowThePlot) {
  std::vector<ChartSeries> s;
  for (int i = 0; i < 12; ++i) s.push_back({"series number " + std::to_string(i), {0, 1}, {0, 1}});
  const auto o = options("legend");
  const ChartFrame f = chart_frame(s, o);
  EXPECT_GT(f.legend_rows, 1);
  EXPECT_EQ(f.plot_h, 220) << "the plot keeps its size";
  const auto svg = line_chart_svg(s, o);
  EXPECT_NE(svg.find("height=\"" + std::to_string(300 + 18 * f.legend_rows) + "\""), std::string::npos);
}

TEST(ReportReaders, MetricsSplitsTrainAndEvaluationLines) {
  const auto m = parse_metrics(
      "{\"step\":1,\"loss\":0.5,\"lr\":0.1}\n\n{\"step\":2,\"loss\":null,\"lr\":0.1,\"note\":\"x\"}\n"
      "{\"step\":2,\"eval_split\":\"dev\",\"dev_accuracy\":0.9,\"dev_kl\":null}\n{\"kind\":\"other\"}\n",
      "m.jsonl");
  ASSERT_EQ(m.train.size(), 2u);
  ASSERT_EQ(m.eval.size(), 1u);
  EXPECT_EQ(m.eval_split, "dev");
  EXPECT_EQ(m.train[0].at("loss"), 0.5);
  EXPECT_EQ(m.train[1].count("loss"), 0u) << "null is left out";
  EXPECT_EQ(m.train[1].count("note"), 0u);
  EXPECT_EQ(m.eval[0].at("dev_accuracy"), 0.9);
  EXPECT_EQ(m.eval[0].count("dev_kl"), 0u);
}

TEST(ReportReaders, MalformedMetricsLineNamesFileAndLine) {
  const std::string good = "{\"step\":1,\"loss\":0.5}\n";
  auto msg = test::error_of([&] { parse_metrics(good + good + "{\"step\":3,\"loss\":0.5\n", "run/metrics.jsonl"); });
  EXPECT_NE(msg.find("run/metrics.jsonl line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected one JSON object per line"), std::string::npos) << msg;
  msg = test::error_of([&] { parse_metrics(good + "[1, 2]\n", "m.jsonl"); });
  EXPECT_NE(msg.find("m.jsonl line 2: a JSON array"), std::string::npos) << msg;
  msg = test::error_of([&] { parse_metrics(good + "{\"loss\":0.5}\n", "m.jsonl"); });
  EXPECT_NE(msg.find("m.jsonl line 2: a train line without a numeric \"step\""), std::string::npos) << msg;
  // Through the run directory too, as a DataError.
  const auto dir = test::temp_dir("report-bad-metrics");
  write(dir + "/metrics.jsonl", good + "not json\n");
  EXPECT_THROW(read_report_inputs(dir, {}), DataError);
  msg = test::error_of([&] { read_report_inputs(dir, {}); });
  EXPECT_NE(msg.find(dir + "/metrics.jsonl line 2"), std::string::npos) << msg;
}

TEST(ReportReaders, EvalFilesOfEveryShape) {
  const std::string one = R"({"data": "d.h5", "split": "test", "examples": 4, "accuracy": null, "agreement": 0.5})";
  auto rows = parse_eval(one, "e.json");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].data, "d.h5");
  EXPECT_EQ(rows[0].examples, 4);
  EXPECT_TRUE(std::isnan(rows[0].accuracy));
  EXPECT_TRUE(std::isnan(rows[0].mcc)) << "absent is NaN too";
  EXPECT_EQ(rows[0].agreement, 0.5);
  std::string about;
  rows = parse_eval(R"({"sets": [)" + one + "," + one + R"(], "student": "s", "precision": "fp32"})", "e.json", &about);
  EXPECT_EQ(rows.size(), 2u);
  EXPECT_EQ(about, "student s, fp32");
  rows = parse_eval("[" + one + "," + one + "," + one + "]", "e.json");
  EXPECT_EQ(rows.size(), 3u);
  auto msg = test::error_of([] { parse_eval("{\"steps\": 3}", "dir/e.json"); });
  EXPECT_NE(msg.find("dir/e.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("distill eval --json"), std::string::npos) << msg;
  msg = test::error_of([] { parse_eval("{", "dir/e.json"); });
  EXPECT_NE(msg.find("dir/e.json: not JSON"), std::string::npos) << msg;
  // Several teachers: the ensemble's row, then one per teacher.
  rows = parse_eval(R"({"data": "d.h5", "split": "test", "examples": 4, "accuracy": 0.75, "agreement": 0.5,
    "teachers": [{"teacher": "a", "weight": 0.5, "teacher_accuracy": 0.7, "agreement": 0.25, "transfer_risk": 0.75,
                  "kl_teacher_student": 0.1},
                 {"teacher": "b", "weight": 0.5, "teacher_accuracy": 0.8, "agreement": 1.0, "transfer_risk": 0.0,
                  "kl_teacher_student": 0.2}]})",
                    "e.json");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].split, "test vs teacher 1");
  EXPECT_EQ(rows[2].split, "test vs teacher 2");
  EXPECT_EQ(rows[2].data, "d.h5");
  EXPECT_EQ(rows[2].examples, 4);
  EXPECT_EQ(rows[1].agreement, 0.25);
  EXPECT_EQ(rows[2].teacher_accuracy, 0.8);
  EXPECT_TRUE(std::isnan(rows[1].accuracy)) << "the student's accuracy is on the set's row only";
}

TEST(ReportReaders, CurveRefitsFromPoints) {
  const auto dir = full_run("report-curve");
  const auto c = parse_curve(read_file(dir + "/curve.json"), dir + "/curve.json");
  ASSERT_EQ(c.series.size(), 1u);
  EXPECT_EQ(c.series[0].name, "transfer.h5 : test");
  EXPECT_EQ(c.title, "transfer risk of transfer.h5:train subsets");
  ASSERT_EQ(c.series[0].points.size(), 3u);
  EXPECT_EQ(c.series[0].points[1].n, 10);
  EXPECT_EQ(c.series[0].points[1].risk, 0.3);
  EXPECT_TRUE(c.series[0].fit.ok);
  EXPECT_EQ(c.series[0].fit.points, 3u);
  ASSERT_EQ(c.table.size(), 4u);
  EXPECT_EQ(c.table[0][3], "risk transfer.h5 : test");
  EXPECT_EQ(c.table[2][0], "10");
  EXPECT_EQ(c.table[2][5], "-") << "a null accuracy";
  const auto msg = test::error_of([] { parse_curve("{\"fits\": []}", "c/curve.json"); });
  EXPECT_NE(msg.find("c/curve.json: no \"points\""), std::string::npos) << msg;
}

TEST(Report, PageHoldsEveryPlotAndTable) {
  const auto dir = full_run("report-page");
  const auto page = report_html(read_report_inputs(dir, {}));
  for (const char* id : {"plot-loss", "plot-dev", "plot-dev-errors", "plot-lr", "plot-schedule", "plot-throughput",
                         "plot-waits", "plot-grad-norm", "plot-curve"})
    EXPECT_EQ(occurrences(page, std::string("id=\"") + id + "\""), 1) << id;
  EXPECT_EQ(occurrences(page, "<svg"), 9);
  EXPECT_EQ(occurrences(page, "class=\"plot\""), 9);
  for (const char* t : {"<table class=\"summary\">", "<table class=\"eval\">", "<table class=\"curve\">"})
    EXPECT_NE(page.find(t), std::string::npos) << t;
  // Summary values, escaped; eval cells, null as "-"; columns no row has are left out.
  EXPECT_NE(page.find("<td class=\"t\">ck&lt;1&gt;</td>"), std::string::npos);
  EXPECT_NE(page.find("<td class=\"t\">a.h5 : test</td><td>400</td><td>0.7500</td><td>0.7400</td><td>0.5000</td>"),
            std::string::npos);
  EXPECT_NE(page.find("<td class=\"t\">b.h5 : test</td><td>100</td><td>-</td><td>-</td><td>-</td>"), std::string::npos);
  EXPECT_NE(page.find("metrics.jsonl (10 train lines, 2 evaluation lines)"), std::string::npos);
  EXPECT_NE(page.find("<h1>distill report: <code>" + dir + "</code></h1>"), std::string::npos);
  // Self-contained: no scripts, no links, no external resources.
  for (const char* bad : {"<script", "href=", "src=", "<link", "url(http"})
    EXPECT_EQ(page.find(bad), std::string::npos) << bad;
  // The beta schedule varies: one series (alpha and temperature are constant).
  const auto at = page.find("id=\"plot-schedule\"");
  EXPECT_EQ(occurrences(page.substr(at, page.find("</svg>", at) - at), "class=\"series\""), 1);
}

TEST(Report, PlotsWithoutDataAreLeftOut) {
  const auto dir = test::temp_dir("report-sparse");
  write(dir + "/metrics.jsonl",
        "{\"step\":1,\"loss\":0.5,\"lr\":0.1,\"alpha\":0.5}\n"
        "{\"step\":2,\"loss\":0.4,\"lr\":0.1,\"alpha\":0.5}\n");
  const auto page = report_html(read_report_inputs(dir, {}));
  EXPECT_EQ(occurrences(page, "<svg"), 2) << "loss and learning rate only";
  EXPECT_NE(page.find("id=\"plot-loss\""), std::string::npos);
  EXPECT_NE(page.find("id=\"plot-lr\""), std::string::npos);
  EXPECT_EQ(page.find("<table"), std::string::npos);
  EXPECT_EQ(page.find("id=\"summary\""), std::string::npos);
}

TEST(Report, EvalFilesFromDirectoryAndFlags) {
  const auto dir = full_run("report-evals");
  const auto other = test::temp_dir("report-evals-other");
  write(other + "/x.json", R"({"data": "c.h5", "split": "dev", "examples": 7, "agreement": 0.25})");
  const auto in = read_report_inputs(dir, {other + "/x.json", dir + "/eval.json"});
  ASSERT_EQ(in.evals.size(), 3u) << "eval.json is read once though named twice";
  EXPECT_EQ(in.evals[2].data, "c.h5");
  const auto page = report_html(in);
  EXPECT_NE(page.find("<th>file</th>"), std::string::npos) << "several files: a file column";
  const auto msg = test::error_of([&] { read_report_inputs(dir, {other + "/missing.json"}); });
  EXPECT_NE(msg.find(other + "/missing.json does not exist"), std::string::npos) << msg;
}

TEST(Report, EmptyDirectoryIsAnError) {
  const auto dir = test::temp_dir("report-empty");
  EXPECT_THROW(write_report(dir, {}), ConfigError);
  const auto msg = test::error_of([&] { write_report(dir, {}); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_NE(msg.find("metrics.jsonl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train_summary.json"), std::string::npos) << msg;
  EXPECT_FALSE(path_exists(dir + "/report.html"));
  EXPECT_THROW(write_report(dir + "/nope", {}), ConfigError);
}

TEST(Report, WritesTheSameBytesEveryTime) {
  const auto dir = full_run("report-determinism");
  const auto path = write_report(dir, {});
  EXPECT_EQ(path, dir + "/report.html");
  const auto first = read_file(path);
  EXPECT_EQ(write_report(dir, {}), path);
  EXPECT_EQ(read_file(path), first);
  EXPECT_EQ(report_html(read_report_inputs(dir, {})), first);
  // Only report.html was added: no temporary file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 5);
  const auto out = write_report(dir, {}, dir + "/sub/page.html");
  EXPECT_EQ(read_file(out), first);
}
