#include "distill/app/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "distill/model/device.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"

namespace distill {

namespace {

// One configurable field: its dotted path, and how to read, parse and print it.
struct Field {
  std::string key;
  std::function<void(const std::string&)> parse;  // throws std::exception on a bad value
  std::function<std::string()> print;
  const char* type;
};

Field make_field(const std::string& key, std::string& v) {
  return {key, [&v](const std::string& s) { v = s; }, [&v] { return v; }, "a string"};
}
Field make_field(const std::string& key, long& v) {
  return {key,
          [&v](const std::string& s) {
            std::size_t pos = 0;
            long x = std::stol(s, &pos);
            if (pos != s.size()) throw std::invalid_argument(s);
            v = x;
          },
          [&v] { return std::to_string(v); }, "an integer"};
}
Field make_field(const std::string& key, bool& v) {
  return {key,
          [&v](const std::string& s) {
            if (s == "true" || s == "1") v = true;
            else if (s == "false" || s == "0") v = false;
            else throw std::invalid_argument(s);
          },
          [&v] { return std::string(v ? "true" : "false"); }, "true or false"};
}
Field make_field(const std::string& key, double& v) {
  return {key,
          [&v](const std::string& s) {
            std::size_t pos = 0;
            double x = std::stod(s, &pos);
            if (pos != s.size()) throw std::invalid_argument(s);
            if (!std::isfinite(x)) throw std::domain_error(s);
            v = x;
          },
          [&v] {
            std::ostringstream os;
            os << std::setprecision(17) << v;
            return os.str();
          },
          "a number"};
}

std::vector<Field> fields(RunConfig& c) {
  return {
      make_field("data.path", c.data.path),
      make_field("data.train_split", c.data.train_split),
      make_field("data.eval_split", c.data.eval_split),
      make_field("data.test_split", c.data.test_split),
      make_field("teacher.path", c.teacher.path),
      make_field("teacher.batch_size", c.teacher.batch_size),
      make_field("teacher.online", c.teacher.online),
      make_field("teacher.ranks", c.teacher.ranks),
      make_field("teacher.stream_timeout", c.teacher.stream_timeout),
      make_field("teacher.device", c.teacher.device),
      make_field("teacher.precision", c.teacher.precision),
      make_field("student.init", c.student_init),
      make_field("student.init_layers", c.student_init_layers),
      make_field("student.kind", c.student.kind),
      make_field("student.vocab_size", c.student.vocab_size),
      make_field("student.hidden", c.student.hidden),
      make_field("student.layers", c.student.layers),
      make_field("student.heads", c.student.heads),
      make_field("student.intermediate", c.student.intermediate),
      make_field("student.max_positions", c.student.max_positions),
      make_field("student.type_vocab", c.student.type_vocab),
      make_field("student.num_labels", c.student.num_labels),
      make_field("student.dropout", c.student.dropout),
      make_field("student.attention_dropout", c.student.attention_dropout),
      make_field("student.input_dim", c.student.input_dim),
      make_field("student.width", c.student.width),
      make_field("student.depth", c.student.depth),
      make_field("student.init_scale", c.student.init_scale),
      make_field("store.path", c.store.path),
      make_field("store.dtype", c.store.dtype),
      make_field("store.shard_size", c.store.shard_size),
      make_field("store.topk", c.store.topk),
      make_field("store.max_bytes", c.store.max_bytes),
      make_field("store.window", c.store.window),
      make_field("store.verify", c.store.verify),
      make_field("distill.alpha", c.distill.alpha),
      make_field("distill.beta", c.distill.beta),
      make_field("distill.temperature", c.distill.temperature),
      make_field("distill.hidden_map", c.layers.hidden_map),
      make_field("distill.attention_map", c.layers.attention_map),
      make_field("distill.hidden_loss", c.layers.hidden_loss),
      make_field("distill.attention_loss", c.layers.attention_loss),
      make_field("distill.hidden_weight", c.layers.hidden_weight),
      make_field("distill.attention_weight", c.layers.attention_weight),
      make_field("distill.head_mismatch", c.layers.head_mismatch),
      make_field("train.out_dir", c.train.out_dir),
      make_field("train.batch_size", c.train.batch_size),
      make_field("train.epochs", c.train.epochs),
      make_field("train.max_steps", c.train.max_steps),
      make_field("train.lr", c.train.lr),
      make_field("train.warmup_steps", c.train.warmup_steps),
      make_field("train.optimizer", c.train.optimizer),
      make_field("train.momentum", c.train.momentum),
      make_field("train.weight_decay", c.train.weight_decay),
      make_field("train.schedule", c.train.schedule),
      make_field("train.max_grad_norm", c.train.max_grad_norm),
      make_field("train.checkpoint_every", c.train.checkpoint_every),
      make_field("train.keep_checkpoints", c.train.keep_checkpoints),
      make_field("train.log_every", c.train.log_every),
      make_field("train.eval_batch_size", c.train.eval_batch_size),
      make_field("train.seed", c.train.seed),
      make_field("train.threads", c.train.threads),
      make_field("train.device", c.train.device),
      make_field("train.precision", c.train.precision),
      make_field("train.bucket_mb", c.train.bucket_mb),
      make_field("train.reduce", c.train.reduce),
      make_field("train.prefetch", c.train.prefetch),
      make_field("train.comm_timeout", c.train.comm_timeout),
      make_field("train.nonfinite", c.train.nonfinite),
      make_field("train.max_skipped_steps", c.train.max_skipped_steps),
  };
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
    const bool abbreviation = !kl.empty() && !leaf.empty() && kl[0] == leaf[0] &&
                              (is_subsequence(kl, leaf) || is_subsequence(leaf, kl));
    if (!abbreviation) score += 1000;
    if (score < best_score) {
      best_score = score;
      best = k;
    }
  }
  return best;
}

void set_field(RunConfig& c, const std::string& key, const std::string& value, const std::string& where) {
  auto fs = fields(c);
  for (auto& f : fs) {
    if (f.key != key) continue;
    try {
      f.parse(value);
    } catch (const std::domain_error&) {
      throw ConfigError(str(where, ": ", key, " = '", value, "' is not a finite number"));
    } catch (const std::exception&) {
      throw ConfigError(str(where, ": ", key, " = '", value, "' is not ", f.type));
    }
    return;
  }
  throw ConfigError(str(where, ": unknown config key '", key, "'; did you mean '", nearest_key(key, config_keys()),
                        "'?"));
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
  RunConfig c;
  std::vector<std::string> out;
  for (const auto& f : fields(c)) out.push_back(f.key);
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
        bool is_section = std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.rfind(section + ".", 0) == 0; });
        DISTILL_CHECK(!is_section, ConfigError, path, ": section '", section, "' must be a mapping of keys");
        throw ConfigError(str(path, ": unknown config key '", section, "'; did you mean '", nearest_key(section, keys), "'?"));
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

void validate_config(const RunConfig& c) {
  c.student.validate("student");
  c.distill.validate();
  c.layers.validate();
  const bool maps = !c.layers.hidden_map.empty() || !c.layers.attention_map.empty();
  DISTILL_CHECK(!maps || c.teacher.online || !c.store.path.empty(), ConfigError,
                "distill.hidden_map / distill.attention_map need the teacher's intermediate layers: set "
                "teacher.online: true, or store.path to a store precomputed with these maps");
  DISTILL_CHECK(c.store.topk >= 0 && c.store.max_bytes > 0 && c.store.window > 0, ConfigError,
                "store.topk must be >= 0 (0 = default), store.max_bytes and store.window positive");
  DISTILL_CHECK(c.teacher.ranks >= 0 && c.teacher.stream_timeout > 0, ConfigError,
                "teacher.ranks must be >= 0 and teacher.stream_timeout positive");
  DISTILL_CHECK(!c.teacher.online || !c.teacher.path.empty(), ConfigError, "teacher.online needs teacher.path");
  c.train.validate();
  DISTILL_CHECK(c.train.threads <= kMaxThreads, ConfigError, "train.threads = ", c.train.threads, " exceeds ",
                kMaxThreads, " threads per rank; 0 sizes the pools from the cores of the node");
  store_dtype(c.store.dtype);
  DISTILL_CHECK(c.store.shard_size > 0, ConfigError, "store.shard_size must be positive, got ", c.store.shard_size);
  DISTILL_CHECK(c.teacher.batch_size > 0, ConfigError, "teacher.batch_size must be positive");
  parse_precision(c.teacher.precision, "teacher.precision");
  DISTILL_CHECK(!c.data.path.empty(), ConfigError, "data.path is empty; point it at a dataset.h5");
}

std::string dump_config(const RunConfig& c) {
  RunConfig copy = c;
  std::ostringstream os;
  std::string section;
  for (const auto& f : fields(copy)) {
    auto dot = f.key.find('.');
    auto sec = f.key.substr(0, dot);
    if (sec != section) {
      os << sec << ":\n";
      section = sec;
    }
    const std::string value = f.print();
    YAML::Emitter e;
    e << value;
    os << "  " << f.key.substr(dot + 1) << ": " << (value.empty() ? "\"\"" : e.c_str()) << "\n";
  }
  return os.str();
}

std::string config_hash(const RunConfig& c) { return hash_hex(dump_config(c)); }

}  // namespace distill
