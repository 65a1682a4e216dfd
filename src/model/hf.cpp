#include "distill/model/hf.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/model/weights.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// Our name for an HF tensor name: adds "bert." to the BertModel layout and renames the
// LayerNorm gamma/beta of old TensorFlow-converted checkpoints.
std::string our_name(std::string n) {
  for (const char* root : {"embeddings.", "encoder.", "pooler."})
    if (starts_with(n, root)) n = "bert." + n;
  auto rename = [&](const std::string& from, const std::string& to) {
    if (n.size() > from.size() && n.compare(n.size() - from.size(), from.size(), from) == 0)
      n = n.substr(0, n.size() - from.size()) + to;
  };
  rename("LayerNorm.gamma", "LayerNorm.weight");
  rename("LayerNorm.beta", "LayerNorm.bias");
  return n;
}

}  // namespace

bool is_hf_dir(const std::string& path) { return fs::is_directory(path) && fs::exists(fs::path(path) / "config.json"); }

HfBert read_hf_dir(const std::string& dir) {
  HfBert hf;
  hf.dir = dir;
  const auto cfg_path = (fs::path(dir) / "config.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cfg_path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(distill::str(cfg_path, " is not valid JSON: ", e.what()));
  }
  DISTILL_CHECK(j.is_object(), DataError, cfg_path, " must hold a JSON object");
  if (j.contains("model_type"))
    DISTILL_CHECK(j["model_type"] == "bert", DataError, cfg_path, ": model_type is ", j["model_type"].dump(),
                  ", distill loads BERT (\"bert\")");
  const std::string act = j.value("hidden_act", "gelu");
  DISTILL_CHECK(act == "gelu", DataError, cfg_path, ": hidden_act is '", act, "', distill's BERT uses 'gelu'");
  const std::string pos = j.value("position_embedding_type", "absolute");
  DISTILL_CHECK(pos == "absolute", DataError, cfg_path, ": position_embedding_type is '", pos,
                "', distill supports 'absolute'");
  try {
    hf.config = bert_config_from_json(j, cfg_path);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(distill::str(cfg_path, ": ", e.what()));
  }
  if (j.contains("id2label") && j["id2label"].is_object()) {
    const auto& m = j["id2label"];
    for (std::size_t i = 0; i < m.size(); ++i) {
      const auto key = std::to_string(i);
      DISTILL_CHECK(m.contains(key), DataError, cfg_path, ": id2label lacks id ", key);
      hf.label_names.push_back(m[key].get<std::string>());
    }
  }
  const auto st_path = (fs::path(dir) / "model.safetensors").string();
  DISTILL_CHECK(fs::exists(st_path), DataError, dir,
                " has config.json but no model.safetensors (PyTorch .bin "
                "checkpoints are not read: save with safe_serialization=True)");
  auto st = load_safetensors(st_path);
  for (auto& [name, blob] : st.tensors) {
    if (starts_with(name, "cls.predictions.") && !starts_with(name, "cls.predictions.decoder."))
      hf.mlm_head[our_name(name)] = blob;
    if (starts_with(name, "classifier.")) hf.has_classifier = true;
    if (starts_with(name, "cls.") || name == "bert.embeddings.position_ids" || name == "embeddings.position_ids") {
      hf.unused.push_back(name);
      continue;
    }
    hf.tensors[our_name(name)] = std::move(blob);
  }
  return hf;
}

void load_hf_weights(BertForSequenceClassification& m, const HfBert& hf, bool require_head) {
  std::set<std::string> optional;
  if (!require_head)
    for (const auto& p : m->named_parameters())
      if (starts_with(p.key(), "classifier.") || starts_with(p.key(), "bert.pooler.")) optional.insert(p.key());
  load_module(*m, hf.tensors, hf.dir + "/model.safetensors", optional);
}

void load_hf_mlm_weights(BertForMaskedLM& m, const HfBert& hf) {
  DISTILL_CHECK(!hf.mlm_head.empty(), DataError, hf.dir,
                "/model.safetensors has no cls.predictions.* tensors: "
                "not a masked-LM checkpoint");
  std::map<std::string, TensorBlob> t;
  for (const auto& [k, v] : hf.tensors)
    if (!starts_with(k, "bert.pooler.") && !starts_with(k, "classifier.")) t[k] = v;
  for (const auto& [k, v] : hf.mlm_head) t[k] = v;
  load_module(*m, t, hf.dir + "/model.safetensors");
}

std::string hf_fingerprint(const std::string& dir) {
  Hasher h;
  h.update(file_digest((fs::path(dir) / "config.json").string()));
  h.update(file_digest((fs::path(dir) / "model.safetensors").string()));
  return h.hex();
}

void export_hf_dir(const std::string& dir, NetworkImpl& m, const std::vector<std::string>& label_names,
                   const std::string& vocab) {
  const auto& c = m.config();
  DISTILL_CHECK(c.is_bert(), ConfigError, "export writes BERT models (bert, bert_mlm); this model is a ", name(c.kind));
  const bool mlm = c.kind == ModelKind::kBertMlm;
  DISTILL_CHECK(label_names.empty() || static_cast<long>(label_names.size()) == c.num_labels, ConfigError,
                "export: ", label_names.size(), " label names for a model with ", c.num_labels, " labels");
  if (fs::exists(dir))
    DISTILL_CHECK(is_hf_dir(dir), DataError, "export: ", dir,
                  " exists and is not a Hugging Face model directory; refusing to replace it");
  nlohmann::json j = {{"architectures", {mlm ? "BertForMaskedLM" : "BertForSequenceClassification"}},
                      {"model_type", "bert"},
                      {"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden},
                      {"num_hidden_layers", c.layers},
                      {"num_attention_heads", c.heads},
                      {"intermediate_size", c.intermediate},
                      {"hidden_act", "gelu"},
                      {"hidden_dropout_prob", c.dropout},
                      {"attention_probs_dropout_prob", c.attention_dropout},
                      {"max_position_embeddings", c.max_positions},
                      {"type_vocab_size", c.type_vocab},
                      {"initializer_range", 0.02},
                      {"layer_norm_eps", c.layer_norm_eps},
                      {"pad_token_id", 0},
                      {"position_embedding_type", "absolute"},
                      {"torch_dtype", "float32"}};
  if (!mlm) j["problem_type"] = "single_label_classification";
  if (!mlm) {
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (long i = 0; i < c.num_labels; ++i) {
      const auto name = label_names.empty() ? "LABEL_" + std::to_string(i) : label_names[i];
      id2label[std::to_string(i)] = name;
      label2id[name] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  }
  const auto tmp = dir + ".partial";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_file_atomic((fs::path(tmp) / "config.json").string(), j.dump(2) + "\n");
  SafeTensors st;
  for (const auto& p : m.named_parameters()) st.tensors[p.key()] = to_blob(p.value());
  st.metadata["format"] = "pt";
  save_safetensors((fs::path(tmp) / "model.safetensors").string(), st);
  if (!vocab.empty()) write_file_atomic((fs::path(tmp) / "vocab.txt").string(), read_file(vocab));
  fsync_path(tmp);
  fs::remove_all(dir);
  rename_durable(tmp, dir);
}

}  // namespace distill
