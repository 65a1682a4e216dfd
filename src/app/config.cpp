#include "distill/app/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"
#include "distill/util/text.h"

namespace distill {

const OptionTable<DataOptions>& DataOptions::options() {
  static const OptionTable<DataOptions> table = [] {
    OptionTable<DataOptions> t("data");
    t.add("path", &DataOptions::path, "dataset.h5 made by distill prepare (required)")
        .check([](const std::string& v) { return !v.empty(); }, "{key} is empty; point it at a dataset.h5");
    t.add("train_split", &DataOptions::train_split, "split trained on (and precomputed)");
    t.add("eval_split", &DataOptions::eval_split, "split evaluated at the end of training");
    t.add("test_split", &DataOptions::test_split, "split distill eval reports on");
    return t;
  }();
  return table;
}

const OptionTable<StreamOptions>& StreamOptions::options() {
  static const OptionTable<StreamOptions> table = [] {
    const char* const kStream = "teacher.ranks must be >= 0 and teacher.stream_timeout positive";
    OptionTable<StreamOptions> t("teacher");
    t.add("ranks", &StreamOptions::ranks, "distill run: teacher ranks (the first ones); --teacher-ranks overrides")
        .check([](long v) { return v >= 0; }, kStream);
    t.add("stream_timeout", &StreamOptions::stream_timeout,
          "distill run: seconds students wait for a new shard before failing")
        .check([](double v) { return v > 0; }, kStream);
    return t;
  }();
  return table;
}

namespace {

// Every key of a run config, in the order dump_config() prints them.
//
// Note [config hash]: the hash of dump_config() is stored in checkpoints and compared on resume,
// so the dump's text, key order included, is part of the checkpoint format. Keys added since are
// left out of the hashed text while they hold their default (config_hash), so that adding a key
// does not orphan existing checkpoints. teacher.ranks and
// teacher.stream_timeout therefore stay between teacher.online and teacher.device.
const OptionTable<RunConfig>& run_options() {
  static const OptionTable<RunConfig> table = [] {
    OptionTable<RunConfig> t;
    t.mount(&RunConfig::data, DataOptions::options());
    t.mount(&RunConfig::teacher, TeacherOptions::options());
    t.mount(&RunConfig::stream, StreamOptions::options(), "teacher.online");
    t.add("student.init", &RunConfig::student_init,
          "initial student weights (distill model or checkpoint, or HF directory); architecture from there, "
          "dropout from student.*");
    t.add("student.init_layers", &RunConfig::student_init_layers,
          "with student.init: copy its embeddings and these layers (e.g. 2,4) into a student of the student.* "
          "architecture (widths must match; DistilBERT)");
    t.mount(&RunConfig::student, ModelConfig::options());
    t.mount(&RunConfig::store, StoreOptions::options());
    t.mount(&RunConfig::distill, KdOptions::options());
    t.mount(&RunConfig::layers, LayerLossOptions::options());
    t.mount(&RunConfig::train, TrainOptions::options());
    return t;
  }();
  return table;
}

bool is_subsequence(const std::string& small, const std::string& big) {
  std::size_t i = 0;
  for (char ch : big)
    if (i < small.size() && small[i] == ch) ++i;
  return i == small.size();
}

// The valid key a user most likely meant: same section first; among its keys, one whose name is
// an abbreviation of the typed one (or the reverse, "lr" for "learning_rate"), else the closest
// by edit distance.
std::string nearest_key(const std::string& key, const std::vector<std::string>& keys) {
  const auto dot = key.find('.');
  const std::string section = key.substr(0, dot), leaf = dot == std::string::npos ? key : key.substr(dot + 1);
  std::vector<std::string> pool;
  for (const auto& k : keys)
    if (k.rfind(section + ".", 0) == 0) pool.push_back(k);
  const bool same_section = !pool.empty();
  if (!same_section) pool = keys;
  std::string best;
  std::size_t best_score = SIZE_MAX;
  for (const auto& k : pool) {
    const std::string kl = k.substr(k.find('.') + 1);
    std::size_t score = same_section ? edit_distance(leaf, kl) : edit_distance(key, k);
    const bool abbreviation =
        !kl.empty() && !leaf.empty() && kl[0] == leaf[0] && (is_subsequence(kl, leaf) || is_subsequence(leaf, kl));
    if (!abbreviation) score += 1000;
    if (score < best_score) {
      best_score = score;
      best = k;
    }
  }
  return best;
}

void set_field(RunConfig& c, const std::string& key, const std::string& value, const std::string& where) {
  const auto* f = run_options().find(key);
  if (!f)
    throw ConfigError(
        str(where, ": unknown config key '", key, "'; did you mean '", nearest_key(key, config_keys()), "'?"));
  try {
    f->parse(c, value);
  } catch (const BadValue& e) {
    throw ConfigError(str(where, ": ", key, " = '", value, "'", e.what()));
  }
}

// A Markdown table cell: '|' escaped.
std::string cell(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}

}  // namespace

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (const auto& f : run_options().fields()) out.push_back(f.key);
  return out;
}

void load_config_file(RunConfig& c, const std::string& path) {
  DISTILL_CHECK(path_exists(path), ConfigError, "config file ", path, " does not exist");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw ConfigError(str(path, ": not valid YAML: ", e.what()));
  }
  if (root.IsNull()) return;
  DISTILL_CHECK(root.IsMap(), ConfigError, path, ": expected a mapping of sections at the top level");
  try {
    std::set<std::string> sections;
    for (const auto& sec : root) {
      const auto section = sec.first.as<std::string>();
      DISTILL_CHECK(sections.insert(section).second, ConfigError, path, ": section '", section,
                    "' appears twice; merge its keys into one block");
      if (sec.second.IsNull()) continue;
      if (!sec.second.IsMap()) {
        auto keys = config_keys();
        bool is_section =
            std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.rfind(section + ".", 0) == 0; });
        DISTILL_CHECK(!is_section, ConfigError, path, ": section '", section, "' must be a mapping of keys");
        throw ConfigError(
            str(path, ": unknown config key '", section, "'; did you mean '", nearest_key(section, keys), "'?"));
      }
      std::set<std::string> keys;
      for (const auto& kv : sec.second) {
        const auto key = section + "." + kv.first.as<std::string>();
        DISTILL_CHECK(keys.insert(key).second, ConfigError, path, ": ", key, " is given twice; keep one");
        DISTILL_CHECK(kv.second.IsScalar(), ConfigError, path, ": ", key, " must be a single value");
        set_field(c, key, kv.second.as<std::string>(), path);
      }
    }
  } catch (const YAML::Exception& e) {
    throw ConfigError(str(path, ": ", e.what(), " (keys must be plain names, values single values)"));
  }
}

void apply_override(RunConfig& c, const std::string& assignment) {
  auto eq = assignment.find('=');
  DISTILL_CHECK(eq != std::string::npos && eq > 0, ConfigError, "--set '", assignment,
                "' is not of the form section.key=value");
  set_field(c, assignment.substr(0, eq), assignment.substr(eq + 1), "--set");
}

namespace {

// Note [several teachers] (kd/loss.h): teacher.extra_paths, store.extra_paths and
// distill.teacher_weights agree with each other and with the first teacher.
void validate_teachers(const RunConfig& c) {
  const auto extra = split_list(c.teacher.extra_paths), stores = split_list(c.store.extra_paths);
  DISTILL_CHECK(extra.empty() || !c.teacher.path.empty(), ConfigError,
                "teacher.extra_paths needs teacher.path (the first teacher)");
  DISTILL_CHECK(!extra.empty() || stores.empty(), ConfigError,
                "store.extra_paths is set but teacher.extra_paths is empty: name the teachers of those stores");
  if (!c.distill.teacher_weights.empty()) c.distill.teacher_weight_values(1 + extra.size());
  if (extra.empty()) return;
  DISTILL_CHECK(c.layers.hidden_map.empty() && c.layers.attention_map.empty(), ConfigError,
                "teacher.extra_paths: layer maps follow one teacher; with several teachers distil their logits only "
                "(clear distill.hidden_map and distill.attention_map)");
  DISTILL_CHECK(!c.teacher.online || stores.empty(), ConfigError,
                "teacher.online and store.extra_paths are both set: online teachers replace the stores");
  DISTILL_CHECK(c.teacher.online || c.store.path.empty() || stores.size() == extra.size(), ConfigError,
                "teacher.extra_paths names ", extra.size(), " teachers and store.extra_paths ", stores.size(),
                " stores: give each further teacher its store (distill precompute writes them), or set teacher.online");
  std::set<std::string> seen{c.store.path};
  for (const auto& s : stores)
    DISTILL_CHECK(seen.insert(s).second, ConfigError, "store.extra_paths: store ", s,
                  " is named twice (or equals store.path); each teacher needs its own store");
}

}  // namespace

void validate_config(const RunConfig& c) {
  c.student.validate("student");
  c.distill.validate();
  c.layers.validate();
  const bool maps = !c.layers.hidden_map.empty() || !c.layers.attention_map.empty();
  DISTILL_CHECK(!maps || c.teacher.online || !c.store.path.empty(), ConfigError,
                "distill.hidden_map / distill.attention_map need the teacher's intermediate layers: set "
                "teacher.online: true, or store.path to a store precomputed with these maps");
  StoreOptions::options().check(c.store);
  StreamOptions::options().check(c.stream);
  DISTILL_CHECK(!c.teacher.online || !c.teacher.path.empty(), ConfigError, "teacher.online needs teacher.path");
  validate_teachers(c);
  c.train.validate();
  TeacherOptions::options().check(c.teacher);
  DataOptions::options().check(c.data);
}

namespace {

// Keys added after checkpoints were written (Note [config hash]).
bool added_later(const std::string& key) {
  static const std::set<std::string> later = {
      "distill.weight_schedule", "distill.alpha_end", "distill.beta_end", "distill.temperature_schedule",
      "distill.temperature_end", "train.select",      "train.patience",
      "train.tensorboard", "distill.relation_heads", "teacher.extra_paths", "store.extra_paths",
      "distill.teacher_weights"};
  return later.count(key) > 0;
}

// The config as YAML, every key; with `for_hash`, keys added later are left out at their default.
std::string dump(const RunConfig& c, bool for_hash) {
  const RunConfig defaults;
  std::ostringstream os;
  std::string section;
  for (const auto& f : run_options().fields()) {
    const std::string value = f.print(c);
    if (for_hash && added_later(f.key) && value == f.print(defaults)) continue;
    const auto dot = f.key.find('.');
    const auto sec = f.key.substr(0, dot);
    if (sec != section) {
      os << sec << ":\n";
      section = sec;
    }
    YAML::Emitter e;
    e << value;
    os << "  " << f.key.substr(dot + 1) << ": " << (value.empty() ? "\"\"" : e.c_str()) << "\n";
  }
  return os.str();
}

}  // namespace

std::string dump_config(const RunConfig& c) { return dump(c, false); }

std::string config_hash(const RunConfig& c) { return hash_hex(dump(c, true)); }

std::string config_help_table() {
  const RunConfig defaults;
  std::ostringstream os;
  os << "| key | type or choices | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& f : run_options().fields()) {
    const std::string printed = f.print(defaults);
    const std::string shown = f.number ? shortest(std::stod(printed)) : printed;
    os << "| `" << f.key << "` | " << cell(f.type) << " | " << (shown.empty() ? "" : "`" + shown + "`") << " | "
       << cell(f.help) << " |\n";
  }
  return os.str();
}

}  // namespace distill
