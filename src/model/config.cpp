#include "distill/model/config.h"

#include <type_traits>

#include <nlohmann/json.hpp>

#include "distill/util/error.h"

namespace distill {

const char* name(ModelKind k) {
  switch (k) {
    case ModelKind::kBert:
      return "bert";
    case ModelKind::kBertMlm:
      return "bert_mlm";
    case ModelKind::kMlp:
      return "mlp";
    case ModelKind::kDeepLinear:
      return "deep_linear";
  }
  return "?";
}

const OptionTable<ModelConfig>& ModelConfig::options() {
  static const OptionTable<ModelConfig> table = [] {
    using C = ModelConfig;
    OptionTable<C> t("student");
    t.add("kind", &C::kind, {ModelKind::kBert, ModelKind::kBertMlm, ModelKind::kMlp, ModelKind::kDeepLinear},
          "BERT classifier, BERT masked LM, or a network on feature vectors (mlp, deep_linear)");
    t.add("vocab_size", &C::vocab_size, "BERT: token ids are < vocab_size");
    t.add("hidden", &C::hidden, "BERT: width of every block; cost grows about quadratically");
    t.add("layers", &C::layers, "BERT: encoder blocks; cost grows linearly");
    t.add("heads", &C::heads, "BERT: attention heads; must divide hidden");
    t.add("intermediate", &C::intermediate, "BERT: feed-forward width (4 * hidden in BERT)");
    t.add("max_positions", &C::max_positions, "BERT: longest sequence the position table covers");
    t.add("type_vocab", &C::type_vocab, "BERT: token_type_ids are < type_vocab");
    t.add("num_labels", &C::num_labels, "classes of the head; 0 = from the data set")
        .check([](long v) { return v >= 0; }, "{key} must be >= 0, got {value}");
    t.add("dropout", &C::dropout, "hidden dropout during training");
    t.add("attention_dropout", &C::attention_dropout, "BERT: dropout on attention probabilities during training");
    t.add("input_dim", &C::input_dim, "vector models: feature width; 0 = from the data set");
    t.add("width", &C::width, "vector models: width of the inner layers");
    t.add("depth", &C::depth, "vector models: weight matrices (1 = a linear model)");
    t.add("init_scale", &C::init_scale, "vector models: std of every initial weight; 0 = 1/sqrt(fan_in)");
    return t;
  }();
  return table;
}

void ModelConfig::validate(const std::string& where) const {
  options().check(*this, where);
  if (is_vector()) {
    DISTILL_CHECK(input_dim >= 0 && width > 0 && depth >= 1, ConfigError, where, ": ", name(kind),
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
  DISTILL_CHECK(dropout >= 0 && dropout < 1 && attention_dropout >= 0 && attention_dropout < 1, ConfigError, where,
                ": dropout rates must be in [0, 1)");
}

nlohmann::json to_json(const ModelConfig& c) {
  if (c.is_vector())
    return {{"model_type", std::string("distill_") + name(c.kind)},
            {"distill_kind", name(c.kind)},
            {"input_dim", c.input_dim},
            {"width", c.width},
            {"depth", c.depth},
            {"num_labels", c.num_labels},
            {"init_scale", c.init_scale},
            {"hidden_dropout_prob", c.dropout}};
  nlohmann::json j = {{"vocab_size", c.vocab_size},          {"hidden_size", c.hidden},
                      {"num_hidden_layers", c.layers},       {"num_attention_heads", c.heads},
                      {"intermediate_size", c.intermediate}, {"max_position_embeddings", c.max_positions},
                      {"type_vocab_size", c.type_vocab},     {"num_labels", c.num_labels},
                      {"hidden_dropout_prob", c.dropout},    {"attention_probs_dropout_prob", c.attention_dropout},
                      {"layer_norm_eps", c.layer_norm_eps},  {"model_type", "bert"}};
  if (c.kind != ModelKind::kBert) j["distill_kind"] = name(c.kind);
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
                  std::is_same_v<T, std::string> ? "a string"
                  : std::is_floating_point_v<T>  ? "a number"
                                                 : "an integer");
    field = v.get<T>();
  };
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) throw ConfigError(str(where, ": model config lacks '", key, "'"));
    read(key, field);
  };
  auto get_if = [&](const char* key, auto& field) {
    if (j.contains(key)) read(key, field);
  };
  if (j.contains("distill_kind")) {
    std::string kind;
    read("distill_kind", kind);
    ModelConfig::options().set(c, "kind", kind, where);
  }
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
  if (j.contains("num_labels"))
    get("num_labels", c.num_labels);
  else if (j.contains("id2label"))
    c.num_labels = static_cast<long>(j.at("id2label").size());
  get_if("hidden_dropout_prob", c.dropout);
  get_if("attention_probs_dropout_prob", c.attention_dropout);
  get_if("layer_norm_eps", c.layer_norm_eps);
  c.validate(where);
  return c;
}

}  // namespace distill
