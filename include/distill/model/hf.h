// Hugging Face BERT checkpoint directories: config.json + model.safetensors (+ vocab.txt).
// Import accepts the BertModel layout (no prefix), BertForSequenceClassification ("bert." +
// "classifier.") and BertForMaskedLM ("bert." + "cls.predictions.", unused by a classifier).
// Export writes what BertForSequenceClassification.from_pretrained expects.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "distill/io/safetensors.h"
#include "distill/model/bert.h"

namespace distill {

struct HfBert {
  std::string dir;
  ModelConfig config;                          // num_labels from id2label/num_labels when present
  std::map<std::string, TensorBlob> tensors;   // renamed to our (HF classifier) names
  std::vector<std::string> unused;             // tensors a classifier has no place for (MLM head)
  std::map<std::string, TensorBlob> mlm_head;  // cls.predictions.* (our names), when present
  bool has_classifier = false;                 // classifier.* present
  std::vector<std::string> label_names;        // from id2label, in id order
};

// True when `path` is a directory holding config.json.
bool is_hf_dir(const std::string& path);
// Reads and checks config.json (model_type bert, hidden_act gelu, absolute positions) and
// model.safetensors. Errors name the file and key.
HfBert read_hf_dir(const std::string& dir);
// Copies the weights into `m`. With `require_head` (a teacher) pooler and classifier must be
// present; otherwise those missing keep their initialisation (a student started from an encoder).
// Missing, unexpected and mis-shaped tensors are listed together in one DataError.
void load_hf_weights(BertForSequenceClassification& m, const HfBert& hf, bool require_head);
// Copies the weights into a masked LM: encoder + cls.predictions (the decoder is tied to the word
// embeddings; a stored cls.predictions.decoder.* is ignored, a pooler is not used).
void load_hf_mlm_weights(BertForMaskedLM& m, const HfBert& hf);
// Digest of config.json and model.safetensors together.
std::string hf_fingerprint(const std::string& dir);

// Writes `dir` (config.json, model.safetensors, vocab.txt when `vocab` is given) under a temporary
// name and renames it into place; an existing `dir` is replaced only when it is an HF directory.
// Kind "bert" exports as BertForSequenceClassification, "bert_mlm" as BertForMaskedLM (the tied
// decoder is not stored); vector models are refused (ConfigError).
void export_hf_dir(const std::string& dir, NetworkImpl& m, const std::vector<std::string>& label_names,
                   const std::string& vocab);

}  // namespace distill
