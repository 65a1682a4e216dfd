#include "distill/store/schema.h"

#include <cstdio>

#include "distill/util/error.h"

#include <nlohmann/json.hpp>

namespace distill {

std::string shard_name(const ShardRange& r) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard-%09lld-%09lld.h5", static_cast<long long>(r.begin),
                static_cast<long long>(r.end - 1));
  return buf;
}

bool parse_shard_name(const std::string& name, ShardRange* r) {
  long long first = 0, last = 0;
  if (std::sscanf(name.c_str(), "shard-%lld-%lld.h5", &first, &last) != 2 || first < 0 || last < first) return false;
  const ShardRange parsed{first, last + 1};
  if (shard_name(parsed) != name) return false;  // no signs, spaces, other widths or suffixes
  *r = parsed;
  return true;
}

std::vector<ShardRange> shard_ranges(std::int64_t n, std::int64_t shard_size) {
  DISTILL_CHECK(shard_size > 0, ConfigError, "store.shard_size must be positive, got ", shard_size);
  std::vector<ShardRange> out;
  for (std::int64_t b = 0; b < n; b += shard_size) out.push_back({b, std::min(n, b + shard_size)});
  return out;
}

std::string layout_json(const StoreMeta& m) {
  nlohmann::json j = {{"topk", m.topk},
                      {"index_dtype", m.index_dtype},
                      {"temperature", m.temperature},
                      {"hidden_layers", m.hidden_layers},
                      {"attention_layers", m.attention_layers},
                      {"teacher_layers", m.teacher_layers},
                      {"hidden_size", m.hidden_size},
                      {"heads", m.heads},
                      {"seq", m.seq}};
  if (!m.qkv_layers.empty()) j["qkv_layers"] = m.qkv_layers;  // absent in stores without them
  return j.dump();
}

void parse_layout_json(StoreMeta& m, const std::string& text, const std::string& where) {
  try {
    auto j = nlohmann::json::parse(text);
    m.topk = j.at("topk").get<std::int64_t>();
    m.index_dtype = j.at("index_dtype").get<std::string>();
    m.temperature = j.at("temperature").get<double>();
    m.hidden_layers = j.at("hidden_layers").get<std::vector<long>>();
    m.attention_layers = j.at("attention_layers").get<std::vector<long>>();
    m.teacher_layers = j.at("teacher_layers").get<std::int64_t>();
    m.hidden_size = j.at("hidden_size").get<std::int64_t>();
    m.heads = j.at("heads").get<std::int64_t>();
    m.seq = j.at("seq").get<std::int64_t>();
    m.qkv_layers = j.value("qkv_layers", std::vector<long>{});
  } catch (const nlohmann::json::exception& e) {
    throw StoreError(str(where, ": malformed layout '", text, "': ", e.what()));
  }
}

const char* name(StoreDtype d) { return d == StoreDtype::kFloat32 ? "float32" : "float16"; }

const OptionTable<StoreOptions>& StoreOptions::options() {
  static const OptionTable<StoreOptions> table = [] {
    using O = StoreOptions;
    const char* const kSizes = "store.topk must be >= 0 (0 = default), store.max_bytes and store.window positive";
    OptionTable<O> t("store");
    t.add("path", &O::path, "store directory; empty = no teacher targets (plain supervised training)");
    t.add("dtype", &O::dtype, {StoreDtype::kFloat16, StoreDtype::kFloat32},
          "logits on disk: float16 (half the bytes) or float32 (exact)");
    t.add("shard_size", &O::shard_size, "examples per shard; smaller = finer resume, more files")
        .check([](long v) { return v > 0; }, "{key} must be positive, got {value}");
    t.add("topk", &O::topk, "masked LM: teacher logits kept per masked token; 0 = the most that fit in 300 bytes (64)")
        .check([](long v) { return v >= 0; }, kSizes);
    t.add("max_bytes", &O::max_bytes, "precompute prints its estimate and refuses a larger store (10 GiB)")
        .check([](long v) { return v > 0; }, kSizes);
    t.add("window", &O::window, "distill run: the first epoch shuffles within windows of this many shards")
        .check([](long v) { return v > 0; }, kSizes);
    t.add("extra_paths", &O::extra_paths,
          "the stores of teacher.extra_paths, comma-separated, in the same order (precompute writes each)");
    t.add("verify", &O::verify,
          "train checks every shard's digest against manifest.json when it opens the store "
          "(each rank reads it once more)");
    return t;
  }();
  return table;
}

h5::Type store_dtype(StoreDtype d) { return d == StoreDtype::kFloat32 ? h5::Type::kFloat32 : h5::Type::kFloat16; }

h5::Type store_dtype(const std::string& name) {
  if (name == "float16") return h5::Type::kFloat16;
  if (name == "float32") return h5::Type::kFloat32;
  throw ConfigError(str("store.dtype is '", name, "', expected float16 or float32"));
}

}  // namespace distill
