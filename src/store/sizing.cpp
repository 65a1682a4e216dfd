#include "distill/store/sizing.h"

#include <spdlog/spdlog.h>

#include "distill/util/error.h"

namespace distill {

std::int64_t topk_bytes_per_token(std::int64_t k, bool half_values, bool short_indices) {
  return k * ((half_values ? 2 : 4) + (short_indices ? 2 : 4)) + 4 + 4;
}

std::int64_t default_topk(bool half_values, bool short_indices) {
  std::int64_t k = 1;
  while (topk_bytes_per_token(2 * k, half_values, short_indices) <= 300) k *= 2;
  return k;
}

namespace {

// Chooses k and the index type of an mlm_topk store; returns the bytes per example of its targets.
std::int64_t plan_topk(StoreMeta& meta, const StoreOptions& o, std::int64_t masked, bool log) {
  const bool half = meta.dtype == "float16";
  const bool short_idx = meta.num_labels <= 65536;
  meta.topk = o.topk > 0 ? o.topk : default_topk(half, short_idx);
  DISTILL_CHECK(meta.topk <= meta.num_labels, ConfigError, "store.topk = ", meta.topk, " exceeds the vocabulary of ",
                meta.num_labels);
  meta.index_dtype = short_idx ? "uint16" : "int32";
  const std::int64_t n = meta.num_examples;
  if (log)
    spdlog::info("masked LM: top-{} teacher logits per masked token ({} bytes each, {} indices), {} masked tokens",
                 meta.topk, topk_bytes_per_token(meta.topk, half, short_idx), meta.index_dtype, masked);
  return n ? (masked * topk_bytes_per_token(meta.topk, half, short_idx)) / n + 16 : 0;
}

}  // namespace

StoreMeta plan_store(StoreMeta meta, const StoreOptions& o, std::int64_t masked_tokens, bool log) {
  meta.dtype = name(o.dtype);
  meta.shard_size = o.shard_size;
  const bool half = meta.dtype == "float16";
  std::int64_t per_example = meta.num_labels * (half ? 2 : 4) + 8;
  if (meta.targets == "mlm_topk") per_example = plan_topk(meta, o, masked_tokens, log);
  // Layers: float16 always.
  per_example += static_cast<std::int64_t>(meta.hidden_layers.size()) * meta.seq * meta.hidden_size * 2 +
                 static_cast<std::int64_t>(meta.attention_layers.size()) * meta.heads * meta.seq * meta.seq * 2 +
                 static_cast<std::int64_t>(meta.qkv_layers.size()) * 3 * meta.seq * meta.hidden_size * 2;
  const std::int64_t n = meta.num_examples;
  const std::int64_t estimate = per_example * n;
  if (log)
    spdlog::info(
        "store estimate: {} bytes per example ({} hidden layers, {} attention layers, {} query/key/value layers), {} "
        "bytes for {} examples (store.max_bytes {})",
        per_example, meta.hidden_layers.size(), meta.attention_layers.size(), meta.qkv_layers.size(), estimate, n,
        o.max_bytes);
  DISTILL_CHECK(estimate <= o.max_bytes, ConfigError, "the store would take about ", estimate, " bytes (", per_example,
                " per example x ", n, "), more than store.max_bytes = ", o.max_bytes,
                "; raise store.max_bytes, map fewer layers, or use teacher.online: true");
  return meta;
}

}  // namespace distill
