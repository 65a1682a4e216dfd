#include "distill/model/config.h"

#include <type_traits>

#include <nlohmann/json.hpp>

#include "distill/util/error.h"

namespace distill {

void ModelConfig::validate(const std::string& where) const {
  DISTILL_CHECK(is_bert() || is_vector(), ConfigError, where, ".kind = '", kind,
                "', expected bert, bert_mlm, mlp or deep_linear");
  DISTILL_CHECK(num_labels >= 0, ConfigError, where, ".num_labels must be >= 0, got ", num_labels);
  if (is_vector()) {
    DISTILL_CHECK(input_dim >= 0 && width > 0 && depth >= 1, ConfigError, where, ": ", kind,
                  " needs width > 0 and depth >= 1 (got width ", width, ", depth ", depth, ") and input_dim >= 0");
    DISTILL_CHECK(init_scale >= 0, ConfigError, where, ".init_scale must be >= 0, got ", init_scale);
    DISTILL_CHECK(dropout >= 0 && dropout < 1, ConfigError, where, ".dropout must be in [0, 1)");
    return;
  }
  DISTILL_CHECK(vocab_size > 0, ConfigError, where, ".vocab_size must be positive, got ", vocab_size);
  DISTILL_CHECK(hidden > 0 && layers >= 0 && heads > 0 && intermediate > 0, ConfigError, where,
                ": hidden, heads and intermediate must be positive and layers non-negative");
  DISTILL_CHECK(hidden % heads == 0, ConfigError, where, ".heads = ", heads, " must divide ", where,
                ".hidden = ", hidden);
  DISTILL_CHECK(max_positions > 0 && type_vocab > 0, ConfigError, where,
                ": max_positions and type_vocab must be positive");
  DISTILL_CHECK(dropout >= 0 && dropout < 1 && attention_dropout >= 0 && attention_dropout < 1, ConfigError,
                where, ": dropout rates must be in [0, 1)");
}

nlohmann::json to_json(const ModelConfig& c) {
  if (c.is_vector())
    return {{"model_type", "distill_" + c.kind}, {"distill_kind", c.kind}, {"input_dim", c.input_dim},
            {"width", c.width}, {"depth", c.depth}, {"num_labels", c.num_labels}, {"init_scale", c.init_scale},
            {"hidden_dropout_prob", c.dropout}};
  nlohmann::json j = {{"vocab_size", c.vocab_size},       {"hidden_size", c.hidden},
          {"num_hidden_layers", c.layers},    {"num_attention_heads", c.heads},
          {"intermediate_size", c.intermediate}, {"max_position_embeddings", c.max_positions},
          {"type_vocab_size", c.type_vocab},  {"num_labels", c.num_labels},
          {"hidden_dropout_prob", c.dropout}, {"attention_probs_dropout_prob", c.attention_dropout},
          {"layer_norm_eps", c.layer_norm_eps}, {"model_type", "bert"}};
  if (c.kind != "bert") j["distill_kind"] = c.kind;
  return j;
}

ModelConfig bert_config_from_json(const nlohmann::json& j, const std::string& where) {
  ModelConfig c;
  DISTILL_CHECK(j.is_object(), ConfigError, where, ": model config is a ", j.type_name(), ", expected a JSON object");
  // Reads `key` into `field`; a value of the wrong type names the key and what was expected.
  auto read = [&](const char* key, auto& field) {
    using T = std::decay_t<decltype(field)>;
    const auto& v = j.at(key);
    const bool ok = std::is_same_v<T, std::string> ? v.is_string()
                    : std::is_floating_point_v<T>  ? v.is_number()
                                                   : v.is_number_integer();
    DISTILL_CHECK(ok, ConfigError, where, ": model config '", key, "' is ", v.dump(), ", expected ",
                  std::is_same_v<T, std::string> ? "a string" : std::is_floating_point_v<T> ? "a number" : "an integer");
    field = v.get<T>();
  };
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) throw ConfigError(str(where, ": model config lacks '", key, "'"));
    read(key, field);
  };
  auto get_if = [&](const char* key, auto& field) {
    if (j.contains(key)) read(key, field);
  };
  get_if("distill_kind", c.kind);
  if (c.is_vector()) {
    get("input_dim", c.input_dim);
    get("width", c.width);
    get("depth", c.depth);
    get("num_labels", c.num_labels);
    get("init_scale", c.init_scale);
    get_if("hidden_dropout_prob", c.dropout);
    c.validate(where);
    return c;
  }
  get("vocab_size", c.vocab_size);
  get("hidden_size", c.hidden);
  get("num_hidden_layers", c.layers);
  get("num_attention_heads", c.heads);
  get("intermediate_size", c.intermediate);
  get("max_position_embeddings", c.max_positions);
  get("type_vocab_size", c.type_vocab);
  if (j.contains("num_labels")) get("num_labels", c.num_labels);
  else if (j.contains("id2label")) c.num_labels = static_cast<long>(j.at("id2label").size());
  get_if("hidden_dropout_prob", c.dropout);
  get_if("attention_probs_dropout_prob", c.attention_dropout);
  get_if("layer_norm_eps", c.layer_norm_eps);
  c.validate(where);
  return c;
}

}  // namespace distill
