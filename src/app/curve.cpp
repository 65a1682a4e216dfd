// `distill curve`: the transfer-risk curve (Note [transfer curve]).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distill/app/commands.h"
#include "distill/app/curve_fit.h"
#include "distill/app/student_run.h"
#include "distill/app/table.h"
#include "distill/comm/mpi.h"
#include "distill/data/sampler.h"
#include "distill/io/h5.h"
#include "distill/model/device.h"
#include "distill/model/load.h"
#include "distill/teacher/load.h"
#include "distill/train/checkpoint.h"
#include "distill/train/eval.h"
#include "distill/train/step_log.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"
#include "distill/util/log.h"

namespace distill {

namespace fs = std::filesystem;

// Note [transfer curve]: the subset of size n is the first n rows of one seeded permutation of the
// train split, so the subsets are nested. Each size trains the same student config (train.seed,
// steps or epochs as configured) in its own directory OUT/n-<n> (resumable: a finished size keeps
// its result.json; an interrupted one resumes from its checkpoint), then evaluates against the
// teacher on every held-out set. With G groups the ranks split into G groups of equal size and
// group g runs sizes g, g + G, ...; a run on k ranks gives the same numbers whether k is the whole
// job or one of its groups, so a cluster run and a run one size after another agree.

namespace {

constexpr std::size_t kSetValues =
    8;  // per (size, set): examples, labeled, accuracy, teacher acc, agreement, risk, kl, has accuracy
constexpr std::size_t kRunValues = 3;  // per size: done, steps, final loss

std::vector<std::int64_t> curve_rows(std::int64_t train_rows, std::uint64_t seed) {
  return epoch_order(train_rows, mix_seed(seed, 0x6375727665), 0);
}

struct CurveSet {
  std::string path, split;
  Dataset data;
};

// The held-out sets, opened and checked against the training data, the student and the teacher
// before any training (DataError naming the file).
std::vector<CurveSet> open_sets(const RunConfig& c, const CurveOptions& o, const Dataset& train_data,
                                const LoadedTeacher& teacher) {
  std::vector<CurveSet> sets;
  const auto& train = train_data.split(c.data.train_split);
  for (const auto& [path, split] : eval_sets(c, o.datas, o.splits)) {
    CurveSet s{path, split, read_dataset(path)};
    const auto& d = s.data;
    const auto& sp = d.split(split);
    DISTILL_CHECK(sp.n > 0, DataError, path, ": split '", split, "' is empty: nothing to evaluate");
    DISTILL_CHECK(d.task == train_data.task && d.label_names == train_data.label_names && sp.dim == train.dim,
                  DataError, path, ":", split, " (a ", d.task, " task, ", d.num_labels(), " labels, ", sp.dim,
                  " features) does not fit the student trained on ", train_data.path, " (a ", train_data.task,
                  " task, ", train_data.num_labels(), " labels, ", train.dim, " features)");
    if (c.student.is_bert())
      check_fits_model(d, split, c.student.vocab_size, c.student.type_vocab, c.student.max_positions, "the student");
    if (const auto* tc = teacher.model->config(); tc && tc->is_bert())
      check_fits_model(d, split, tc->vocab_size, tc->type_vocab, tc->max_positions, "teacher " + teacher.file);
    sets.push_back(std::move(s));
  }
  return sets;
}

// Evaluates the student of `checkpoint` and the teacher on every set; values as kSetValues each.
std::vector<double> evaluate_run(Communicator& group, const RunConfig& c, const std::string& checkpoint,
                                 LoadedTeacher& teacher, const std::vector<CurveSet>& sets) {
  auto student = load_model(checkpoint);
  const auto device = resolve_device(c.train.device, group.local_rank(), "train.device");
  student.model->to(device);
  const auto precision = train_precision(c.train, device, false);
  std::vector<double> v;
  for (const auto& s : sets) {
    const auto r =
        evaluate(group, *student.model, teacher.model.get(), s.data.split(s.split), c.train.eval_batch_size, precision);
    v.insert(v.end(), {static_cast<double>(r.examples), static_cast<double>(r.labeled), r.accuracy, r.teacher_accuracy,
                       r.agreement, r.transfer_risk, r.kl, r.labeled > 0 ? 1.0 : 0.0});
  }
  return v;
}

nlohmann::json set_json(const CurveSet& s, const double* v) {
  const nlohmann::json none;
  return {{"data", s.path},
          {"split", s.split},
          {"examples", static_cast<std::int64_t>(v[0])},
          {"labeled", static_cast<std::int64_t>(v[1])},
          {"accuracy", v[7] > 0 ? nlohmann::json(v[2]) : none},
          {"teacher_accuracy", v[7] > 0 ? nlohmann::json(v[3]) : none},
          {"agreement", v[4]},
          {"transfer_risk", v[5]},
          {"kl_teacher_student", v[6]}};
}

// The values of a finished size from its result.json text, or empty when it is not one of this
// run (another identity or other sets) or cannot be read.
std::vector<double> saved_values(const std::string& text, const std::string& path, const std::string& identity,
                                 const std::vector<CurveSet>& sets) {
  const auto num = [](const nlohmann::json& x) { return x.is_number() ? x.get<double>() : NAN; };
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.value("identity", "") != identity || j.at("sets").size() != sets.size()) return {};
    std::vector<double> v = {1.0, num(j.at("steps")), num(j.at("final_loss"))};
    for (std::size_t k = 0; k < sets.size(); ++k) {
      const auto& s = j.at("sets")[k];
      if (s.at("data") != sets[k].path || s.at("split") != sets[k].split) return {};
      v.insert(v.end(), {num(s.at("examples")), num(s.at("labeled")), num(s.at("accuracy")),
                         num(s.at("teacher_accuracy")), num(s.at("agreement")), num(s.at("transfer_risk")),
                         num(s.at("kl_teacher_student")), s.at("accuracy").is_null() ? 0.0 : 1.0});
    }
    return v;
  } catch (const nlohmann::json::exception& e) {
    spdlog::warn("curve: {} is unreadable ({}); training that size again", path, e.what());
    return {};
  }
}

// The loss of the last logged step of a run (metrics.jsonl's last line with a loss; the last step
// is always logged, evaluation lines may follow it).
double last_logged_loss(const std::string& out_dir, double fallback) {
  const auto path = metrics_path(out_dir);
  if (!path_exists(path)) return fallback;
  std::istringstream in(read_file(path));
  double loss = fallback;
  for (std::string text; std::getline(in, text);) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("loss")) loss = j["loss"].is_number() ? j["loss"].get<double>() : NAN;
  }
  return loss;
}

// One size on `group`: trains (or resumes) in `dir` and evaluates; returns kRunValues + sets values.
// A finished size (result.json with the same identity and sets) is read back instead. The subset
// is the first n rows of `order`, sorted (blocks are then read in file order; still nested).
std::vector<double> run_size(Communicator& group, const RunConfig& c, const CurveOptions& o, std::int64_t n,
                             const std::vector<std::int64_t>& order, const Dataset& data, LoadedTeacher& teacher,
                             const std::vector<CurveSet>& sets) {
  RunConfig cn = c;
  cn.train.out_dir = (fs::path(o.out) / ("n-" + std::to_string(n))).string();
  const std::string identity = config_hash(c) + "/curve rows " + std::to_string(n) + " of seed " +
                               std::to_string(o.subset_seed) + " (" + std::to_string(order.size()) + "), data " +
                               data.content_hash + ", teacher " + teacher.fingerprint + ", " +
                               std::to_string(group.size()) + " ranks";
  const auto result_path = (fs::path(cn.train.out_dir) / "result.json").string();
  std::string saved;
  if (group.rank() == 0 && path_exists(result_path)) saved = read_file(result_path);
  group.broadcast_string(saved, 0);
  if (!saved.empty()) {
    auto v = saved_values(saved, result_path, identity, sets);
    if (!v.empty()) {
      if (group.rank() == 0) spdlog::info("curve: n = {} already done ({})", n, result_path);
      return v;
    }
  }
  std::vector<std::int64_t> rows(order.begin(), order.begin() + n);
  std::sort(rows.begin(), rows.end());
  TrainResult r;
  {
    auto lock = lock_job_dir(group, cn.train.out_dir, "distill curve n=" + std::to_string(n));
    auto run = open_student_run(group, cn, /*resume=*/true, 0);
    run->job.rows = rows;
    run->job.config_hash = hash_hex(identity);
    if (group.rank() == 0) spdlog::info("curve: n = {}: training in {}", n, cn.train.out_dir);
    r = train(group, run->job);
  }
  std::vector<double> v = {1.0, static_cast<double>(r.steps), last_logged_loss(cn.train.out_dir, r.final_loss)};
  const auto ev = evaluate_run(group, cn, r.checkpoint, teacher, sets);
  v.insert(v.end(), ev.begin(), ev.end());
  if (group.rank() == 0) {
    const auto all_ids = h5::File::open(c.data.path)
                             .read_vector<std::int64_t>("/" + c.data.train_split + "/example_id", h5::Type::kInt64);
    nlohmann::json ids = nlohmann::json::array();
    for (auto row : rows) ids.push_back(all_ids.at(static_cast<std::size_t>(row)));
    const nlohmann::json loss = std::isfinite(v[2]) ? nlohmann::json(v[2]) : nlohmann::json();
    nlohmann::json j = {{"identity", identity},       {"n", n},
                        {"steps", r.steps},           {"final_loss", loss},
                        {"checkpoint", r.checkpoint}, {"example_ids", ids}};
    j["sets"] = nlohmann::json::array();
    for (std::size_t k = 0; k < sets.size(); ++k)
      j["sets"].push_back(set_json(sets[k], &v[kRunValues + k * kSetValues]));
    write_file_atomic(result_path, j.dump(1) + "\n");
    spdlog::info("curve: n = {} done: {}", n, j["sets"].dump());
  }
  return v;
}

// The curve as a table and one line per fit (text output).
void print_curve(const nlohmann::json& j, const std::vector<CurveSet>& sets, double below) {
  Table t;
  t.rows.push_back({"n"});
  for (const auto& s : sets)
    for (const char* h : {"risk", "KL", "accuracy"}) t.rows[0].push_back(std::string(h) + " " + s.split);
  const auto num = [](const nlohmann::json& x) {
    return x.is_null() ? std::string("-") : fmt::format("{:.4f}", x.get<double>());
  };
  for (const auto& p : j["points"]) {
    t.rows.push_back({std::to_string(p["n"].get<std::int64_t>())});
    for (const auto& s : p["sets"])
      t.rows.back().insert(t.rows.back().end(),
                           {num(s["transfer_risk"]), num(s["kl_teacher_student"]), num(s["accuracy"])});
  }
  t.print();
  for (const auto& f : j["fits"])
    if (f["ok"].get<bool>())
      std::cout << fmt::format(
          "fit {} : {}: risk ~ {:.4g} (log n / n)^{:.3f}, 95% interval of kappa [{:.3f}, {:.3f}], {} points{}\n",
          f["data"].get<std::string>(), f["split"].get<std::string>(), f["c"].get<double>(), f["kappa"].get<double>(),
          f["kappa_low"].get<double>(), f["kappa_high"].get<double>(), f["points"].get<std::size_t>(),
          below > 0 ? fmt::format(" with n < {}", below) : "");
    else
      std::cout << "fit " << f["data"].get<std::string>() << " : " << f["split"].get<std::string>() << ": none ("
                << f["why"].get<std::string>() << ")\n";
}

// Rank 0: curve.json, curve.svg and the table.
void write_curve(const RunConfig& c, const CurveOptions& o, const std::vector<CurveSet>& sets,
                 const std::vector<double>& all, double below, int groups, int ranks_per_group, std::int64_t train_rows,
                 bool json) {
  const std::size_t per = kRunValues + kSetValues * sets.size();
  nlohmann::json j = {{"data", c.data.path},
                      {"train_split", c.data.train_split},
                      {"train_rows", train_rows},
                      {"sizes", o.sizes},
                      {"subset_seed", o.subset_seed},
                      {"groups", groups},
                      {"ranks_per_group", ranks_per_group},
                      {"fit_below", below},
                      {"teacher", c.teacher.path}};
  j["points"] = nlohmann::json::array();
  std::vector<CurveSeries> series(sets.size());
  for (std::size_t i = 0; i < o.sizes.size(); ++i) {
    const double* v = &all[i * per];
    nlohmann::json p = {{"n", o.sizes[i]}, {"steps", static_cast<std::int64_t>(v[1])}, {"final_loss", v[2]}};
    p["sets"] = nlohmann::json::array();
    for (std::size_t k = 0; k < sets.size(); ++k) {
      p["sets"].push_back(set_json(sets[k], v + kRunValues + k * kSetValues));
      series[k].points.push_back({static_cast<double>(o.sizes[i]), v[kRunValues + k * kSetValues + 5]});
    }
    j["points"].push_back(p);
  }
  j["fits"] = nlohmann::json::array();
  for (std::size_t k = 0; k < sets.size(); ++k) {
    series[k].name = fs::path(sets[k].path).filename().string() + " : " + sets[k].split;
    series[k].fit = fit_power(series[k].points, below);
    const auto& f = series[k].fit;
    nlohmann::json fj = {{"data", sets[k].path}, {"split", sets[k].split}, {"ok", f.ok}, {"points", f.points}};
    if (f.ok) {
      fj.update({{"kappa", f.kappa},
                 {"c", f.c},
                 {"kappa_low", f.kappa_low},
                 {"kappa_high", f.kappa_high},
                 {"level", 0.95},
                 {"r2", f.r2}});
    } else {
      fj["why"] = f.why;
    }
    j["fits"].push_back(fj);
  }
  fs::create_directories(o.out);
  const auto svg = (fs::path(o.out) / "curve.svg").string();
  write_file_atomic(svg, curve_svg(series,
                                   "transfer risk of " + fs::path(c.data.path).filename().string() + ":" +
                                       c.data.train_split + " subsets",
                                   below > 0 ? below : 0));
  j["svg"] = svg;
  write_file_atomic((fs::path(o.out) / "curve.json").string(), j.dump(2) + "\n");
  if (json) {
    std::cout << j.dump(2) << std::endl;
    return;
  }
  print_curve(j, sets, below);
  std::cout << "wrote " << o.out << "/curve.json and " << svg << "\n";
}

}  // namespace

void cmd_curve(Communicator& comm, const RunArgs& a, const CurveOptions& opts) {
  auto c = resolve_config(comm, a);
  CurveOptions o = opts;
  if (o.subset_seed == 0) o.subset_seed = static_cast<std::uint64_t>(c.train.seed);
  DISTILL_CHECK(!o.sizes.empty(), ConfigError, "distill curve needs --sizes n1,n2,...");
  for (std::size_t i = 0; i < o.sizes.size(); ++i)
    DISTILL_CHECK(o.sizes[i] > 0 && (i == 0 || o.sizes[i] > o.sizes[i - 1]), ConfigError,
                  "--sizes must be positive and increasing, got ", o.sizes[i], i ? " after " : "",
                  i ? std::to_string(o.sizes[i - 1]) : "");
  DISTILL_CHECK(o.groups >= 1 && o.groups <= comm.size() && comm.size() % o.groups == 0, ConfigError, "--groups ",
                o.groups, " must divide the ", comm.size(), " ranks");
  DISTILL_CHECK(!c.teacher.path.empty(), ConfigError,
                "distill curve measures agreement with the teacher: set teacher.path (and store.path or "
                "teacher.online for training)");
  DISTILL_CHECK(!o.out.empty(), ConfigError, "distill curve needs --out DIR");
  const auto data = read_dataset(c.data.path);
  DISTILL_CHECK(!data.regression, ConfigError, "distill curve measures top-1 agreement with the teacher; ", data.path,
                " is a regression data set (Note [regression]): use distill eval's MSE and Pearson");
  const auto train_rows = data.split(c.data.train_split).n;
  DISTILL_CHECK(o.sizes.back() <= train_rows, ConfigError, "--sizes goes up to ", o.sizes.back(), " but split ",
                c.data.train_split, " of ", c.data.path, " has ", train_rows, " rows");
  const double below = o.fit_below >= 0          ? o.fit_below
                       : data.task == "features" ? static_cast<double>(data.split(c.data.train_split).dim)
                                                 : 0.0;
  const auto order = curve_rows(train_rows, o.subset_seed);
  const int per_group = comm.size() / o.groups, g = comm.rank() / per_group;
  auto group = comm.split(g, comm.rank());
  if (o.groups > 1)
    set_log_rank(comm.rank(), comm.size(),
                 host_name() + " group " + std::to_string(g) + " rank " + std::to_string(group->rank()));
  if (comm.rank() == 0)
    spdlog::info("curve: sizes {} of {} train rows, {} group(s) of {} rank(s), fit on n < {}",
                 nlohmann::json(o.sizes).dump(), train_rows, o.groups, per_group, below > 0 ? below : INFINITY);
  auto teacher = load_teacher(c.teacher, *group);
  const auto sets = open_sets(c, o, data, teacher);
  const std::size_t per = kRunValues + kSetValues * sets.size();
  std::vector<double> all(per * o.sizes.size(), 0.0);
  for (std::size_t i = static_cast<std::size_t>(g); i < o.sizes.size(); i += static_cast<std::size_t>(o.groups)) {
    const auto v = run_size(*group, c, o, o.sizes[i], order, data, teacher, sets);
    if (group->rank() == 0) std::copy(v.begin(), v.end(), all.begin() + static_cast<std::ptrdiff_t>(i * per));
  }
  // Groups that finish early wait here for the others as long as they take: the collective
  // timeout (train.comm_timeout) is lifted for this join and set again after it.
  if (o.groups > 1) mpi_set_timeout(1e9);
  comm.allreduce(all.data(), all.size(), DType::kFloat64, ReduceOp::kSum);
  if (o.groups > 1) mpi_set_timeout(c.train.comm_timeout);
  for (std::size_t i = 0; i < o.sizes.size(); ++i)
    DISTILL_CHECK(all[i * per] == 1.0, Error, "curve: size ", o.sizes[i], " has no result");
  if (comm.rank() == 0) write_curve(c, o, sets, all, below, o.groups, per_group, train_rows, o.json);
}

}  // namespace distill
