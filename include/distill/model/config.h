// Architecture of a model distill trains or loads. `kind` selects it: a BERT encoder with a
// sequence-classification head (bert) or a masked-LM head (bert_mlm), or a network on feature
// vectors (mlp, deep_linear); the BERT fields apply to the first two, the vector fields to the rest.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "distill/util/options.h"

namespace distill {

enum class ModelKind { kBert, kBertMlm, kMlp, kDeepLinear };
// "bert", "bert_mlm", "mlp", "deep_linear": the spelling in configs, model files and logs.
const char* name(ModelKind k);

struct ModelConfig {
  ModelKind kind = ModelKind::kBert;
  long vocab_size = 1000;          // token ids are < vocab_size
  long hidden = 128;               // width of every block; cost grows ~quadratically
  long layers = 2;                 // encoder blocks; cost grows linearly
  long heads = 2;                  // attention heads; must divide hidden
  long intermediate = 512;         // feed-forward width (4 * hidden in BERT)
  long max_positions = 128;        // longest sequence the position table covers
  long type_vocab = 2;             // token_type_ids are < type_vocab
  long num_labels = 0;             // classes of the head; 0 = take from the data set
  double dropout = 0.1;            // hidden dropout during training
  double attention_dropout = 0.1;  // dropout on attention probabilities during training
  double layer_norm_eps = 1e-12;
  // Vector models: f(x) = W_depth ... W_1 x (deep_linear, no biases) or Linear/ReLU layers (mlp).
  long input_dim = 0;     // feature width; 0 = take from the data set
  long width = 64;        // width of the inner layers
  long depth = 2;         // weight matrices (1 = a linear model)
  double init_scale = 0;  // std of every initial weight; 0 = 1/sqrt(fan_in)

  bool is_bert() const { return kind == ModelKind::kBert || kind == ModelKind::kBertMlm; }
  bool is_vector() const { return kind == ModelKind::kMlp || kind == ModelKind::kDeepLinear; }

  // The student.* keys (layer_norm_eps is no config key: it comes with imported weights).
  static const OptionTable<ModelConfig>& options();
  // Throws ConfigError naming the field (prefixed by `where`) when sizes are inconsistent.
  void validate(const std::string& where) const;
};

nlohmann::json to_json(const ModelConfig& c);
// Reads a config written by to_json (HF-style keys are accepted too); `where` names the source.
ModelConfig bert_config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace distill
