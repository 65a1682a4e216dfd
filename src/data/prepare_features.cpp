// prepare_features: feature vectors from a CSV or HDF5 file into a dataset.h5 layout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "distill/data/prepare.h"
#include "distill/data/split_rows.h"
#include "distill/io/h5.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/text.h"

namespace distill {

namespace {

// Rows of numbers from a CSV file; a first row that does not parse is a header.
void read_numeric_csv(const std::string& path, std::vector<std::vector<double>>& rows, std::vector<long>& lines) {
  std::istringstream in(read_file(path));
  std::string line;
  long no = 0;
  std::size_t width = 0;
  while (std::getline(in, line)) {
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<double> row;
    std::string bad;
    std::size_t col = 0;
    for (const auto& f : split(line, ',')) {
      ++col;
      char* end = nullptr;
      const double v = std::strtod(f.c_str(), &end);
      if (f.empty() || *end != '\0') {
        if (bad.empty()) bad = str("column ", col, " is '", f, "', not a number");
      }
      row.push_back(v);
    }
    if (!bad.empty()) {
      DISTILL_CHECK(rows.empty() && no == 1, DataError, path, ":", no, ": ", bad);
      continue;  // the header
    }
    if (width == 0) width = row.size();
    DISTILL_CHECK(row.size() == width, DataError, path, ":", no, ": ", row.size(), " columns, the first row has ",
                  width);
    rows.push_back(std::move(row));
    lines.push_back(no);
  }
}

// Feature rows as read: x[i] and its raw label y[i], from file line (CSV) or row (HDF5) lines[i].
struct FeatureRows {
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  std::vector<long> lines;
  bool h5 = false;
};

bool is_h5_path(const std::string& path) {
  return path.size() > 3 && (path.substr(path.size() - 3) == ".h5" || path.substr(path.size() - 5) == ".hdf5");
}

// An HDF5 file with datasets "features" [n, d] and "labels" [n] (no labels when unlabeled).
FeatureRows read_h5_features(const std::string& path, bool unlabeled) {
  FeatureRows r;
  r.h5 = true;
  auto f = h5::File::open(path);
  DISTILL_CHECK(f.exists("/features") && (unlabeled || f.exists("/labels")), DataError, path,
                " needs datasets 'features' [n, d] and 'labels' [n]");
  auto fi = f.info("/features");
  DISTILL_CHECK(fi.shape.size() == 2, DataError, path, ": 'features' must be 2-D, it has ", fi.shape.size(),
                " dimensions");
  auto flat = f.read_vector<double>("/features", h5::Type::kFloat64);
  if (unlabeled) {
    r.y.assign(static_cast<std::size_t>(fi.shape[0]), 0.0);
  } else {
    auto li = f.info("/labels");
    DISTILL_CHECK(li.shape.size() == 1 && li.shape[0] == fi.shape[0], DataError, path, ": 'labels' must be [",
                  fi.shape[0], "]");
    r.y = f.read_vector<double>("/labels", h5::Type::kFloat64);
  }
  const auto d = static_cast<std::size_t>(fi.shape[1]);
  for (std::size_t i = 0; i < r.y.size(); ++i) {
    r.x.emplace_back(flat.begin() + i * d, flat.begin() + (i + 1) * d);
    r.lines.push_back(static_cast<long>(i));
  }
  return r;
}

// A CSV of numbers; column `label_index` (negative: from the end) is the label; every column is a
// feature when unlabeled.
FeatureRows read_csv_features(const std::string& path, long label_index, bool unlabeled) {
  FeatureRows r;
  std::vector<std::vector<double>> rows;
  read_numeric_csv(path, rows, r.lines);
  DISTILL_CHECK(!rows.empty(), DataError, path, " has no rows of numbers");
  const long w = static_cast<long>(rows[0].size());
  const long li = label_index < 0 ? w + label_index : label_index;
  if (unlabeled) {
    r.y.assign(rows.size(), 0.0);
    r.x = std::move(rows);
    return r;
  }
  DISTILL_CHECK(w >= 2 && li >= 0 && li < w, ConfigError, "--label-index ", label_index, " is outside the ", w,
                " columns of ", path);
  for (auto& row : rows) {
    r.y.push_back(row[li]);
    row.erase(row.begin() + li);
    r.x.push_back(std::move(row));
  }
  return r;
}

// Checks that labels are integers and features finite; the classes are the sorted distinct labels
// (d.label_names, at least 2). Returns the class of each label value.
// Regression (Note [regression]): labels are finite targets and the data set has one output.
std::map<double, std::int64_t> feature_classes(const PrepareOptions& o, const FeatureRows& r, Dataset& d) {
  const auto& input = o.input;
  std::set<double> distinct;
  for (std::size_t i = 0; i < r.y.size(); ++i) {
    DISTILL_CHECK(std::isfinite(r.y[i]) && (o.regression || r.y[i] == std::floor(r.y[i])), DataError, input,
                  r.h5 ? " row " : ":", r.lines[i], ": label ", r.y[i],
                  o.regression ? " is not a finite number" : " is not an integer");
    DISTILL_CHECK(!o.regression || std::fabs(r.y[i]) <= std::numeric_limits<float>::max(), DataError, input,
                  r.h5 ? " row " : ":", r.lines[i], ": target ", r.y[i], " is beyond float32's range");
    for (std::size_t j = 0; j < r.x[i].size(); ++j)
      DISTILL_CHECK(std::isfinite(r.x[i][j]), DataError, input, r.h5 ? " row " : ":", r.lines[i], ": feature ", j,
                    " is not finite");
    distinct.insert(r.y[i]);
  }
  std::map<double, std::int64_t> class_of;
  if (o.regression) {
    check_regression_options(o);
    d.regression = true;
    d.label_names = {o.label_names.empty() ? std::string("target") : o.label_names[0]};
    return class_of;
  }
  if (o.unlabeled) {
    d.label_names = unlabeled_classes(o);
    return class_of;
  }
  for (double v : distinct) {
    class_of[v] = static_cast<std::int64_t>(d.label_names.size());
    d.label_names.push_back(std::to_string(static_cast<long long>(v)));
  }
  DISTILL_CHECK(d.label_names.size() >= 2, DataError, input, " has ", d.label_names.size(),
                " distinct label(s): classification needs at least 2");
  return class_of;
}

// Per feature: mean and standard deviation over the train rows (part 0), so dev/test stay unseen;
// a constant feature gets sd 1 (it stays 0). Without `on`: mean 0, sd 1 (the features unchanged).
void train_moments(const FeatureRows& r, const std::vector<int>& part, std::int64_t dim, bool on,
                   std::vector<double>& mean, std::vector<double>& sd) {
  mean.assign(dim, 0.0);
  sd.assign(dim, 1.0);
  if (!on) return;
  const auto n = static_cast<std::int64_t>(r.x.size());
  std::vector<double> sq(dim, 0.0);
  std::int64_t m = 0;
  for (std::int64_t i = 0; i < n; ++i)
    if (part[i] == 0) {
      ++m;
      for (std::int64_t j = 0; j < dim; ++j) mean[j] += r.x[i][j];
    }
  for (auto& v : mean) v /= std::max<std::int64_t>(1, m);
  for (std::int64_t i = 0; i < n; ++i)
    if (part[i] == 0)
      for (std::int64_t j = 0; j < dim; ++j) sq[j] += (r.x[i][j] - mean[j]) * (r.x[i][j] - mean[j]);
  for (std::int64_t j = 0; j < dim; ++j) {
    sd[j] = std::sqrt(sq[j] / std::max<std::int64_t>(1, m));
    if (sd[j] == 0) sd[j] = 1;  // a constant feature stays 0
  }
}

// The splits (split_parts; rows within a split in_split_order), features scaled by mean and sd.
void split_features(const PrepareOptions& o, const FeatureRows& r, const std::map<double, std::int64_t>& class_of,
                    Dataset& d) {
  const auto n = static_cast<std::int64_t>(r.x.size());
  const auto dim = static_cast<std::int64_t>(r.x[0].size());
  const auto part = split_parts(n, o);
  std::vector<double> mean, sd;
  train_moments(r, part, dim, o.standardize, mean, sd);
  const char* names[3] = {"train", "dev", "test"};
  std::vector<std::int64_t> members[3];
  for (std::int64_t i = 0; i < n; ++i) members[part[i]].push_back(i);
  std::vector<std::int64_t> order;
  for (int k = 0; k < 3; ++k)
    for (auto i : in_split_order(members[k], o.seed, k)) order.push_back(i);
  for (auto i : order) {
    auto& s = d.splits[names[part[i]]];
    s.dim = dim;
    ++s.n;
    for (std::int64_t j = 0; j < dim; ++j) s.features.push_back(static_cast<float>((r.x[i][j] - mean[j]) / sd[j]));
    s.labels.push_back(o.unlabeled ? kIgnoreLabel : o.regression ? 0 : class_of.at(r.y[i]));
    s.example_id.push_back(i);
    if (o.regression) s.scores.push_back(o.unlabeled ? std::nanf("") : static_cast<float>(r.y[i]));
  }
  DISTILL_CHECK(d.splits.count("train"), DataError, o.input, ": no rows left for the train split");
}

}  // namespace

Dataset prepare_features(const PrepareOptions& o, PrepareReport* report) {
  check_fractions(o);
  const auto rows = is_h5_path(o.input) ? read_h5_features(o.input, o.unlabeled)
                                        : read_csv_features(o.input, o.label_index, o.unlabeled);
  Dataset d;
  d.task = "features";
  const auto class_of = feature_classes(o, rows, d);
  split_features(o, rows, class_of, d);
  PrepareReport rep;
  rep.rows = static_cast<std::int64_t>(rows.x.size());
  const char* names[3] = {"train", "dev", "test"};
  for (int k = 0; k < 3; ++k)
    if (d.splits.count(names[k])) (k == 0 ? rep.train : k == 1 ? rep.dev : rep.test) = d.splits[names[k]].n;
  if (report) *report = rep;
  return d;
}

}  // namespace distill
