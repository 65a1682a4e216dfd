// `distill eval`: the student of a run against the labels and its teacher (or teachers) on one or
// more held-out sets, as text, a table or JSON.
#include <torch/torch.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "distill/app/commands.h"
#include "distill/app/table.h"
#include "distill/model/device.h"
#include "distill/model/load.h"
#include "distill/model/teacher_model.h"
#include "distill/model/weights.h"
#include "distill/teacher/load.h"
#include "distill/train/checkpoint.h"
#include "distill/train/eval.h"
#include "distill/train/options.h"
#include "distill/util/error.h"
#include "distill/util/text.h"

namespace distill {

std::vector<std::pair<std::string, std::string>> eval_sets(const RunConfig& c, const std::vector<std::string>& datas,
                                                           const std::vector<std::string>& splits) {
  const std::vector<std::string> paths = datas.empty() ? std::vector<std::string>{c.data.path} : datas;
  std::vector<std::pair<std::string, std::string>> sets;
  if (paths.size() == 1) {
    for (const auto& s : splits.empty() ? std::vector<std::string>{c.data.test_split} : splits)
      sets.emplace_back(paths[0], s);
    return sets;
  }
  DISTILL_CHECK(splits.size() <= 1 || splits.size() == paths.size(), ConfigError, "--split is given ", splits.size(),
                " times for ", paths.size(), " --data; give it once (for every data set) or once per --data");
  for (std::size_t i = 0; i < paths.size(); ++i)
    sets.emplace_back(paths[i], splits.empty() ? c.data.test_split : splits.size() == 1 ? splits[0] : splits[i]);
  return sets;
}

namespace {

bool is_regression(const nlohmann::json& set) { return set.value("task", "") == "regression"; }

std::string number_or_dash(const nlohmann::json& v) {
  return v.is_null() ? std::string("-") : fmt::format("{:.4f}", v.get<double>());
}

// Regression sets as one table (Note [regression]).
void print_regression_table(const nlohmann::json& sets, bool teacher) {
  Table t;
  t.rows.push_back({"data set : split", "examples", "MSE", "Pearson", "Spearman"});
  if (teacher) t.rows[0].insert(t.rows[0].end(), {"teacher MSE", "teacher Pearson", "MSE(t, s)", "Pearson(t, s)"});
  for (const auto& s : sets) {
    t.rows.push_back({s["data"].get<std::string>() + " : " + s["split"].get<std::string>(),
                      std::to_string(s["examples"].get<std::int64_t>()), number_or_dash(s["mse"]),
                      number_or_dash(s["pearson"]), number_or_dash(s["spearman"])});
    if (teacher)
      t.rows.back().insert(t.rows.back().end(),
                           {number_or_dash(s["teacher_mse"]), number_or_dash(s["teacher_pearson"]),
                            number_or_dash(s["mse_teacher_student"]), number_or_dash(s["pearson_teacher_student"])});
  }
  t.print();
}

// The evaluated sets as one table (text output of several sets).
void print_eval_table(const nlohmann::json& sets, bool teacher) {
  if (is_regression(sets[0])) return print_regression_table(sets, teacher);
  Table t;
  t.rows.push_back({"data set : split", "examples", "accuracy", "macro-F1", "MCC"});
  if (teacher) t.rows[0].insert(t.rows[0].end(), {"teacher", "agreement", "risk", "KL"});
  const auto num = number_or_dash;
  for (const auto& s : sets) {
    t.rows.push_back({s["data"].get<std::string>() + " : " + s["split"].get<std::string>(),
                      std::to_string(s["examples"].get<std::int64_t>()), num(s["accuracy"]),
                      num(s.value("macro_f1", nlohmann::json())), num(s.value("mcc", nlohmann::json()))});
    if (teacher)
      t.rows.back().insert(t.rows.back().end(), {num(s["teacher_accuracy"]), num(s["agreement"]),
                                                 num(s["transfer_risk"]), num(s["kl_teacher_student"])});
  }
  t.print();
}

// The teachers eval compares with: teacher.path, and with teacher.extra_paths each of them and
// their ensemble (Note [several teachers]), which then is the one `judge` points to.
struct EvalTeachers {
  std::vector<std::unique_ptr<LoadedTeacher>> loaded;  // teacher.path, then teacher.extra_paths
  std::vector<double> weights;
  std::unique_ptr<TeacherModel> ensemble;
  TeacherModel* judge = nullptr;
};

EvalTeachers eval_teachers(Communicator& comm, const RunConfig& c) {
  EvalTeachers t;
  if (c.teacher.path.empty()) return t;
  std::vector<std::string> paths{c.teacher.path};
  for (const auto& p : split_list(c.teacher.extra_paths)) paths.push_back(p);
  for (const auto& p : paths) {
    TeacherOptions o = c.teacher;
    o.path = p;
    t.loaded.push_back(std::make_unique<LoadedTeacher>(load_teacher(o, comm)));
  }
  t.judge = t.loaded[0]->model.get();
  if (paths.size() == 1) return t;
  t.weights = c.distill.teacher_weight_values(paths.size());
  std::vector<TeacherModel*> members;
  for (const auto& l : t.loaded) members.push_back(l->model.get());
  t.ensemble = make_ensemble_teacher(members, t.weights);
  t.judge = t.ensemble.get();
  return t;
}

// One set: the student against the teacher (or ensemble), and each teacher of an ensemble.
nlohmann::json evaluate_set(Communicator& comm, NetworkImpl& student, const EvalTeachers& t, const DataSplit& split,
                            const RunConfig& c, c10::ScalarType precision) {
  auto j = to_json(evaluate(comm, student, t.judge, split, c.train.eval_batch_size, precision));
  if (!t.ensemble) return j;
  j["teachers"] = nlohmann::json::array();
  const auto keys = is_regression(j) ? std::vector<std::string>{"teacher_mse", "teacher_pearson", "teacher_spearman",
                                                                  "mse_teacher_student", "pearson_teacher_student"}
                                      : std::vector<std::string>{"teacher_accuracy", "agreement", "transfer_risk",
                                                                  "kl_teacher_student"};
  for (std::size_t i = 0; i < t.loaded.size(); ++i) {
    const auto r = to_json(evaluate(comm, student, t.loaded[i]->model.get(), split, c.train.eval_batch_size, precision));
    nlohmann::json one = {{"teacher", t.loaded[i]->file}, {"weight", t.weights[i]}};
    for (const auto& k : keys) one[k] = r[k];
    j["teachers"].push_back(one);
  }
  return j;
}

// The text form of one evaluated regression set.
void print_regression_set(const nlohmann::json& r, bool teacher) {
  const auto line = [&](const std::string& what, const nlohmann::json& v) {
    std::cout << "  " << what << std::string(what.size() < 26 ? 26 - what.size() : 1, ' ') << number_or_dash(v)
              << "\n";
  };
  line("student MSE", r["mse"]);
  line("student Pearson", r["pearson"]);
  line("student Spearman", r["spearman"]);
  if (!teacher) return;
  const std::string who = r.contains("teachers") ? "ensemble" : "teacher";
  line(who + " MSE", r["teacher_mse"]);
  line(who + " Pearson", r["teacher_pearson"]);
  line(who + " Spearman", r["teacher_spearman"]);
  line("MSE(" + who + ", student)", r["mse_teacher_student"]);
  line("Pearson(" + who + ", student)", r["pearson_teacher_student"]);
  for (const auto& t : r.value("teachers", nlohmann::json::array()))
    std::cout << "  teacher " << t["teacher"].get<std::string>() << " (weight " << t["weight"].get<double>()
              << "): MSE " << number_or_dash(t["teacher_mse"]) << ", Pearson " << number_or_dash(t["teacher_pearson"])
              << ", MSE(teacher, student) " << number_or_dash(t["mse_teacher_student"]) << "\n";
}

// The text form of one evaluated set.
void print_eval_set(const nlohmann::json& r, bool teacher) {
  std::cout << "split " << r["split"].get<std::string>() << " of " << r["data"].get<std::string>() << ", "
            << r["examples"].get<std::int64_t>() << " examples, " << r["labeled"].get<std::int64_t>() << " labeled\n";
  if (is_regression(r)) return print_regression_set(r, teacher);
  if (!r["accuracy"].is_null()) std::cout << "  student accuracy      " << r["accuracy"].get<double>() << "\n";
  if (r.contains("macro_f1") && !r["macro_f1"].is_null())
    std::cout << "  student macro-F1      " << r["macro_f1"].get<double>() << "\n"
              << "  student MCC           " << r["mcc"].get<double>() << "\n";
  if (!teacher) return;
  const std::string who = r.contains("teachers") ? "ensemble" : "teacher";
  if (!r["teacher_accuracy"].is_null())
    std::cout << "  " << who << " accuracy" << std::string(13 - who.size(), ' ') << r["teacher_accuracy"].get<double>()
              << "\n";
  std::cout << "  top-1 agreement       " << r["agreement"].get<double>() << "\n"
            << "  transfer risk         " << r["transfer_risk"].get<double>() << "\n"
            << "  KL(" << who << "||student) " << std::string(8 - who.size(), ' ')
            << r["kl_teacher_student"].get<double>() << "\n";
  for (const auto& t : r.value("teachers", nlohmann::json::array()))
    std::cout << "  teacher " << t["teacher"].get<std::string>() << " (weight " << t["weight"].get<double>()
              << "): accuracy " << number_or_dash(t["teacher_accuracy"])
              << ", agreement " << t["agreement"].get<double>() << ", KL " << t["kl_teacher_student"].get<double>()
              << "\n";
}

}  // namespace

void cmd_eval(Communicator& comm, const RunArgs& a, const std::string& checkpoint,
              const std::vector<std::string>& datas, const std::vector<std::string>& splits, bool json) {
  auto c = resolve_config(comm, a);
  const auto sets = eval_sets(c, datas, splits);
  const std::string ck = checkpoint.empty() ? checkpoints_dir(c.train.out_dir) : checkpoint;
  auto student = load_model(ck);
  const auto device = resolve_device(c.train.device, comm.local_rank(), "train.device");
  student.model->to(device);
  const auto teachers = eval_teachers(comm, c);
  const auto precision = train_precision(c.train, device, comm.rank() == 0);
  // Every set is opened and checked before the first is evaluated.
  std::map<std::string, Dataset> opened;
  for (const auto& [path, split] : sets) {
    if (!opened.count(path)) opened.emplace(path, read_dataset(path));
    const auto& data = opened.at(path);
    DISTILL_CHECK(data.split(split).n > 0, DataError, path, ": split '", split, "' is empty: nothing to evaluate");
    const auto& sc = student.model->config();
    if (sc.is_bert())
      check_fits_model(data, split, sc.vocab_size, sc.type_vocab, sc.max_positions, "student " + student.file);
    DISTILL_CHECK(data.task == "mlm" || sc.num_labels == 0 || sc.num_labels == data.num_labels(), DataError, path,
                  " has ", data.num_labels(), " labels, student ", student.file, " has ", sc.num_labels);
    for (const auto& t : teachers.loaded)
      if (const auto* tc = t->model->config(); tc && tc->is_bert())
        check_fits_model(data, split, tc->vocab_size, tc->type_vocab, tc->max_positions, "teacher " + t->file);
  }
  nlohmann::json results = nlohmann::json::array();
  for (const auto& [path, split] : sets) {
    auto j = evaluate_set(comm, *student.model, teachers, opened.at(path).split(split), c, precision);
    j["data"] = path;
    j["split"] = split;
    results.push_back(j);
  }
  if (comm.rank() != 0) return;
  nlohmann::json j = results.size() == 1 ? results[0] : nlohmann::json{{"sets", results}};
  j["precision"] = precision_name(precision);
  j["student"] = student.file;
  j["student_parameters"] = parameter_count(*student.model);
  if (!teachers.loaded.empty()) {
    const auto& first = *teachers.loaded[0];
    j["teacher_precision"] = precision_name(first.precision);
    std::string files = first.file;
    for (std::size_t i = 1; i < teachers.loaded.size(); ++i) files += " + " + teachers.loaded[i]->file;
    j["teacher"] = files;
    j["teacher_kind"] = teachers.judge->kind();
    j["teacher_parameters"] = teachers.judge->parameters();
  }
  if (json)
    std::cout << j.dump(2) << std::endl;
  else if (results.size() > 1)
    print_eval_table(results, teachers.judge != nullptr);
  else
    print_eval_set(results[0], teachers.judge != nullptr);
}

}  // namespace distill
