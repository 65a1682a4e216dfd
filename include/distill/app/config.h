// The run configuration: one YAML file with sections data, teacher, student, store, distill and
// train, mapped onto the components' option structs. Loading is strict: an unknown key is an
// error naming its path and the nearest valid key. `--set section.key=value` overrides any field.
#pragma once
#include <string>
#include <vector>

#include "distill/kd/intermediate.h"
#include "distill/kd/loss.h"
#include "distill/model/config.h"
#include "distill/store/schema.h"
#include "distill/teacher/precompute.h"
#include "distill/train/options.h"
#include "distill/util/options.h"

namespace distill {

struct DataOptions {
  std::string path;                   // dataset.h5 made by 'distill prepare'
  std::string train_split = "train";  // split trained on (and precomputed)
  std::string eval_split = "dev";     // split evaluated at the end of training
  std::string test_split = "test";    // split 'distill eval' reports on

  static const OptionTable<DataOptions>& options();  // the data.* keys
};

// What only 'distill run' uses. Its keys sit in the teacher section: teacher.ranks and
// teacher.stream_timeout.
struct StreamOptions {
  long ranks = 0;               // teacher ranks (the first ones); --teacher-ranks overrides
  double stream_timeout = 600;  // students fail after this many seconds without a new shard

  static const OptionTable<StreamOptions>& options();
};

struct RunConfig {
  DataOptions data;
  TeacherOptions teacher;
  StreamOptions stream;
  ModelConfig student;
  // student.init: start the student from these weights (a distill model or checkpoint, or a
  // Hugging Face directory); its architecture then comes from there, dropout from `student`.
  std::string student_init;
  // student.init_layers: "2,4,6" copies the embeddings of student.init and these of its layers
  // (1-based) into a student of the `student` architecture (DistilBERT); widths must match.
  std::string student_init_layers;
  StoreOptions store;
  KdOptions distill;
  LayerLossOptions layers;  // distill.hidden_map, attention_map, ... (intermediate layers)
  TrainOptions train;
};

// Every field's dotted path, in declaration order.
std::vector<std::string> config_keys();
// Reads a YAML file into `c` (fields absent from the file keep their defaults).
void load_config_file(RunConfig& c, const std::string& path);
// Applies "section.key=value"; errors name the key and the expected type.
void apply_override(RunConfig& c, const std::string& assignment);
// Checks every section (and cross-field rules); throws ConfigError naming the field.
void validate_config(const RunConfig& c);
// The resolved config as YAML, one "section: {key: value}" block per section, in a fixed order.
std::string dump_config(const RunConfig& c);
std::string config_help_table();
// The hash checkpoints store: of dump_config(), with keys added later left out at their default
// (Note [config hash]).
std::string config_hash(const RunConfig& c);
// Every key as a Markdown table (key | type or choices | default | meaning), in dump order; the
// README's config table is this text.
std::string config_help_table();

// Levenshtein distance, for "did you mean" hints.
std::size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace distill
