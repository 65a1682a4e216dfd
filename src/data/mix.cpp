#include "distill/data/mix.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "distill/data/dataset.h"
#include "distill/data/dataset_writer.h"
#include "distill/data/sampler.h"
#include "distill/util/error.h"
#include "distill/util/text.h"

namespace distill {

MixSource parse_mix_source(const std::string& text) {
  MixSource s;
  auto parts = split(text, ':');
  const auto is_split = [](const std::string& x) { return x == "train" || x == "dev" || x == "test"; };
  if (parts.size() > 1) {
    char* end = nullptr;
    const double w = std::strtod(parts.back().c_str(), &end);
    if (!parts.back().empty() && end && *end == '\0') {
      DISTILL_CHECK(std::isfinite(w) && w > 0, ConfigError, "--source ", text, ": weight ", parts.back(),
                    ", expected a number > 0");
      s.weight = w;
      parts.pop_back();
    }
  }
  if (parts.size() > 1 && is_split(parts.back())) {
    s.split = parts.back();
    parts.pop_back();
  }
  for (std::size_t i = 0; i < parts.size(); ++i) s.path += (i ? ":" : "") + parts[i];
  DISTILL_CHECK(!s.path.empty(), ConfigError, "--source '", text, "': expected PATH[:SPLIT][:WEIGHT]");
  return s;
}

namespace {

// The first of `a` and `b` that differ in what a mix needs to be the same; empty when they fit.
std::string difference(const Dataset& a, const DataSplit& sa, const Dataset& b, const DataSplit& sb) {
  if (a.task != b.task) return str("task ", a.task, " vs ", b.task);
  if (a.vocab_hash != b.vocab_hash || a.vocab_size != b.vocab_size)
    return str("vocabulary ", a.vocab_hash, " (", a.vocab_size, " tokens) vs ", b.vocab_hash, " (", b.vocab_size,
               " tokens): prepare both with the same --vocab");
  if (sa.seq != sb.seq)
    return str("rows of ", sa.seq, " vs ", sb.seq, " tokens: prepare both with the same --max-length");
  if (sa.dim != sb.dim) return str(sa.dim, " vs ", sb.dim, " features");
  if (a.regression != b.regression)
    return str(a.regression ? "regression" : "classification", " vs ", b.regression ? "regression" : "classification");
  if (a.label_names != b.label_names)
    return str("label names ", nlohmann::json(a.label_names).dump(), " vs ", nlohmann::json(b.label_names).dump());
  return "";
}

// The rows of `s` a weight's fractional part takes: round(frac n) of a seeded permutation, sorted.
std::vector<char> fraction_rows(std::int64_t n, double frac, std::uint64_t seed, std::size_t source) {
  std::vector<char> take(static_cast<std::size_t>(n), 0);
  const auto k = static_cast<std::int64_t>(std::llround(frac * static_cast<double>(n)));
  const auto order = epoch_order(n, mix_seed(seed, 0x6d6978, source), 0);
  for (std::int64_t i = 0; i < k; ++i) take[static_cast<std::size_t>(order[i])] = 1;
  return take;
}

// Rows of `b` as a block with ids moved to offset + copy * span + id (take: rows to keep, or all).
DataSplit shifted(const DataSplit& b, std::int64_t first, const std::vector<char>* take, std::int64_t offset,
                  std::int64_t span, std::int64_t copy) {
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 0; i < b.n; ++i)
    if (!take || (*take)[static_cast<std::size_t>(first + i)]) rows.push_back(i);
  DataSplit out = rows.size() == static_cast<std::size_t>(b.n) ? b : b.select(rows);
  for (auto& id : out.example_id) id = offset + copy * span + id;
  return out;
}

std::int64_t max_id(const DataSplit& s) {
  std::int64_t m = -1;
  s.scan([&](const DataSplit& b, std::int64_t) {
    for (auto id : b.example_id) m = std::max(m, id);
  });
  return m;
}

}  // namespace

namespace {

// The sources, opened and checked against the first.
std::vector<Dataset> open_sources(const MixOptions& o) {
  DISTILL_CHECK(!o.sources.empty(), ConfigError, "distill mix needs at least one --source");
  std::vector<Dataset> data;
  for (const auto& s : o.sources) {
    data.push_back(read_dataset(s.path));
    const auto& d = data.back();
    DISTILL_CHECK(d.task != "mlm", ConfigError, "--source ", s.path,
                  " is a masked-LM data set; mix takes sequence or feature classification data");
    const auto& sp = d.split(s.split);
    DISTILL_CHECK(sp.n > 0, DataError, s.path, ": split ", s.split, " is empty");
    if (data.size() > 1) {
      const auto diff = difference(data[0], data[0].split(o.sources[0].split), d, sp);
      DISTILL_CHECK(diff.empty(), DataError, "cannot mix ", s.path, ":", s.split, " into ", o.sources[0].path, ":",
                    o.sources[0].split, ": ", diff);
    }
  }
  return data;
}

// The data set whose dev and test the mix keeps (`own` = the first source; null for "none"),
// checked against the sources; none of the sources may be one of those splits.
const Dataset* eval_source(const MixOptions& o, const std::vector<Dataset>& data, Dataset& own) {
  if (o.eval_from == "none") return nullptr;
  const Dataset* eval = &data[0];
  if (!o.eval_from.empty()) {
    own = read_dataset(o.eval_from);
    eval = &own;
  }
  for (const char* name : {"dev", "test"}) {
    if (!eval->splits.count(name)) continue;
    const auto diff = difference(data[0], data[0].split(o.sources[0].split), *eval, eval->split(name));
    DISTILL_CHECK(diff.empty(), DataError, "--eval-from ", eval->path, ": split ", name, " does not fit ",
                  o.sources[0].path, ": ", diff);
  }
  for (std::size_t k = 0; k < o.sources.size(); ++k)
    for (const char* name : {"dev", "test"})
      DISTILL_CHECK(!(o.sources[k].split == name && data[k].content_hash == eval->content_hash), ConfigError,
                    "--source ", o.sources[k].path, ":", name, " is the ", name, " split the mix keeps from ",
                    eval->path,
                    ": training on it would leak it into evaluation (use --eval-from another data set or none)");
  return eval;
}

}  // namespace

MixReport write_mix(const MixOptions& o, const std::string& out) {
  const auto data = open_sources(o);
  Dataset eval_data;
  const Dataset* eval = eval_source(o, data, eval_data);
  DatasetWriter w(out, data[0]);
  MixReport rep;
  // Ids: dev and test keep theirs; the train rows are placed above them.
  std::int64_t offset = 0;
  if (eval)
    for (const char* name : {"dev", "test"})
      if (eval->splits.count(name)) offset = std::max(offset, max_id(eval->split(name)) + 1);
  nlohmann::json sources = nlohmann::json::array();
  for (std::size_t k = 0; k < o.sources.size(); ++k) {
    const auto& s = o.sources[k];
    const auto& sp = data[k].split(s.split);
    const auto span = max_id(sp) + 1;
    const auto copies = static_cast<std::int64_t>(std::floor(s.weight));
    const double frac = s.weight - static_cast<double>(copies);
    std::int64_t rows = 0;
    for (std::int64_t c = 0; c < copies; ++c)
      sp.scan([&](const DataSplit& b, std::int64_t first) {
        w.append("train", shifted(b, first, nullptr, offset, span, c));
        rows += b.n;
      });
    if (frac > 0) {
      const auto take = fraction_rows(sp.n, frac, o.seed, k);
      sp.scan([&](const DataSplit& b, std::int64_t first) {
        auto part = shifted(b, first, &take, offset, span, copies);
        rows += part.n;
        if (part.n > 0) w.append("train", part);
      });
    }
    DISTILL_CHECK(rows > 0, ConfigError, "--source ", s.path, ":", s.split, ":", s.weight, " takes no row of its ",
                  sp.n, " (round(", frac, " x ", sp.n, ") = 0): raise the weight or leave the source out");
    sources.push_back({{"path", s.path},
                       {"split", s.split},
                       {"content_hash", data[k].content_hash},
                       {"weight", s.weight},
                       {"rows", rows},
                       {"id_offset", offset},
                       {"id_span", span}});
    rep.rows.push_back(rows);
    rep.train += rows;
    offset += (copies + (frac > 0 ? 1 : 0)) * span;
  }
  if (eval)
    for (const char* name : {"dev", "test"}) {
      if (!eval->splits.count(name)) continue;
      eval->split(name).scan([&](const DataSplit& b, std::int64_t) { w.append(name, b); });
      (std::string(name) == "dev" ? rep.dev : rep.test) = eval->split(name).n;
    }
  nlohmann::json mix = {{"sources", sources}, {"seed", o.seed}, {"eval_from", eval ? eval->path : ""}};
  w.set_attr("mix", mix.dump());
  rep.content_hash = w.finish();
  const auto written = read_dataset(out, 0);
  rep.labeled = written.split("train").labeled_rows();
  return rep;
}

}  // namespace distill
