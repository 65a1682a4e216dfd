// Architecture of a BERT-style encoder with a sequence-classification head.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace distill {

struct BertConfig {
  long vocab_size = 1000;        // token ids are < vocab_size
  long hidden = 128;             // width of every block; cost grows ~quadratically
  long layers = 2;               // encoder blocks; cost grows linearly
  long heads = 2;                // attention heads; must divide hidden
  long intermediate = 512;       // feed-forward width (4 * hidden in BERT)
  long max_positions = 128;      // longest sequence the position table covers
  long type_vocab = 2;           // token_type_ids are < type_vocab
  long num_labels = 0;           // classes of the head; 0 = take from the data set
  double dropout = 0.1;          // hidden dropout during training
  double attention_dropout = 0.1;  // dropout on attention probabilities during training
  double layer_norm_eps = 1e-12;

  // Throws ConfigError naming the field (prefixed by `where`) when sizes are inconsistent.
  void validate(const std::string& where) const;
};

nlohmann::json to_json(const BertConfig& c);
// Reads a config written by to_json (HF-style keys are accepted too); `where` names the source.
BertConfig bert_config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace distill
