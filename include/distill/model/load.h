// Loading a model from any path a user gives: a distill model file, a checkpoint step directory,
// a checkpoints directory (its latest), or a Hugging Face directory (a BERT classifier).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "distill/model/bert.h"

namespace distill {

struct LoadedModel {
  Network model;
  std::string file;                      // the weights file, or the HF directory
  std::string fingerprint;               // what model_fingerprint(path) returns
  std::vector<std::string> label_names;  // from an HF config's id2label (else empty)
};

// With `require_head` false (a student's initialisation) an HF encoder without pooler or
// classifier loads, those layers keeping their fresh initialisation; `num_labels` > 0 then sets
// the head's size.
// An HF directory becomes a masked LM when `kind` is bert_mlm, or when `kind` is unset (auto), a
// head is required and the directory has cls.predictions.* but no classifier (BertForMaskedLM).
LoadedModel load_model(const std::string& path, bool require_head = true, long num_labels = 0,
                       std::optional<ModelKind> kind = std::nullopt);
// Identifies the weights without loading them (TorchScript files too).
std::string model_fingerprint(const std::string& path);

}  // namespace distill
