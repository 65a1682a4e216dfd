#include "distill/store/encode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "distill/util/error.h"

namespace distill {

namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// IEEE binary32 -> binary16, rounded to nearest even; beyond the range gives an infinity, NaN a
// quiet NaN. The FP16 library's fp16_ieee_from_fp32_value, which LibTorch's Half uses too, so a
// stored value has the bits torch's float32 -> float16 conversion gives it.
std::uint16_t float_to_half(float f) {
  const std::uint32_t w = bits_of(f);
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t shl1 = w + w;  // exponent and mantissa, shifted out of the sign
  if (shl1 > 0xFF000000u) return static_cast<std::uint16_t>((sign >> 16) | 0x7E00u);
  std::uint32_t bias = shl1 & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  // Scaling up and back down rounds the mantissa to 10 bits (subnormals included) and sends
  // values beyond the range to infinity; adding the bias aligns the rounded bits.
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  base = float_of((bias >> 1) + 0x07800000u) + base;
  const std::uint32_t b = bits_of(base);
  return static_cast<std::uint16_t>((sign >> 16) | (((b >> 13) & 0x7C00u) + (b & 0x0FFFu)));
}

bool is_finite(float v) { return std::isfinite(v); }
bool is_finite(std::uint16_t half) { return (half & 0x7C00u) != 0x7C00u; }

// Builds an EncodedShard array by array; after a non-finite target it adds nothing more.
class Encoder {
 public:
  Encoder(const ShardRange& r, EncodedShard& out) : r_(r), out_(out) {}

  // mlm_topk: example i's masked tokens are rows [token_offsets[i], token_offsets[i + 1]).
  std::vector<std::int64_t> token_offsets;

  // Adds float32 targets `v` of `shape`, stored as float16 when `half`, else float32.
  void values(const std::string& name, std::vector<float> v, const std::vector<hsize_t>& shape, bool half,
              hsize_t chunk_rows) {
    if (!out_.nonfinite.empty()) return;
    check_size(name, v.size(), shape);
    if (!half) {
      find_nonfinite(name, v, shape, false);
      add(name, h5::Type::kFloat32, std::move(v), shape, chunk_rows);
      return;
    }
    std::vector<std::uint16_t> bits(v.size());
    std::transform(v.begin(), v.end(), bits.begin(), float_to_half);
    find_nonfinite(name, bits, shape, true);
    add(name, h5::Type::kFloat16, std::move(bits), shape, chunk_rows);
  }

  // Adds `v` of `shape` as raw elements of `type`.
  template <typename T>
  void add(const std::string& name, h5::Type type, std::vector<T> v, const std::vector<hsize_t>& shape,
           hsize_t chunk_rows) {
    if (!out_.nonfinite.empty()) return;
    check_size(name, v.size(), shape);
    auto owned = std::make_shared<std::vector<T>>(std::move(v));
    out_.arrays.push_back({name, type, shape, owned->data(), chunk_rows});
    out_.buffers.push_back(std::move(owned));
  }

 private:
  const ShardRange& r_;
  EncodedShard& out_;

  void check_size(const std::string& name, std::size_t size, const std::vector<hsize_t>& shape) const {
    DISTILL_CHECK(size == h5::numel(shape), StoreError, "shard ", shard_name(r_), ": ", name, " got ", size,
                  " values, its shape needs ", h5::numel(shape));
  }

  // Sets out_.nonfinite when a row (first dimension) of `v` holds a value that is not finite.
  template <typename T>
  void find_nonfinite(const std::string& name, const std::vector<T>& v, const std::vector<hsize_t>& shape, bool half) {
    if (v.empty()) return;
    const std::size_t width = v.size() / shape[0];
    std::vector<std::size_t> rows;  // the first 5
    std::int64_t count = 0;
    for (std::size_t row = 0; row < shape[0]; ++row) {
      const auto first = v.begin() + static_cast<std::ptrdiff_t>(row * width);
      if (std::all_of(first, first + static_cast<std::ptrdiff_t>(width), [](T x) { return is_finite(x); })) continue;
      if (rows.size() < 5) rows.push_back(row);
      ++count;
    }
    if (count > 0) out_.nonfinite = report(name, rows, count, half);
  }

  std::string report(const std::string& name, const std::vector<std::size_t>& rows, std::int64_t count,
                     bool half) const {
    std::string examples;
    std::int64_t last = -1;
    for (auto row : rows) {
      auto i = static_cast<std::int64_t>(row);  // the example of a masked token's row
      if (!token_offsets.empty())
        i = std::upper_bound(token_offsets.begin(), token_offsets.end(), i) - token_offsets.begin() - 1;
      if (i != last)
        examples += (examples.empty() ? "" : ", ") + std::to_string(out_.example_ids.at(static_cast<std::size_t>(i)));
      last = i;
    }
    return str("non-finite ", name, " (NaN or infinity", half ? ", or beyond float16's range of +-65504" : "", ") in ",
               count, token_offsets.empty() ? " examples" : " masked tokens", " of shard ", shard_name(r_), " (rows [",
               r_.begin, ", ", r_.end, ")), first at example ids ", examples);
  }
};

void encode_topk(Encoder& e, const StoreMeta& meta, hsize_t count, ShardTargets& t) {
  DISTILL_CHECK(t.tokens.size() == count, StoreError, "mlm_topk shard of ", count, " rows got masked token counts of ",
                t.tokens.size(), " examples");
  std::vector<std::int64_t> offsets(count + 1, 0);
  for (std::size_t i = 0; i < count; ++i) offsets[i + 1] = offsets[i] + t.tokens[i];
  e.token_offsets = offsets;
  const auto tokens = static_cast<hsize_t>(offsets.back()), k = static_cast<hsize_t>(meta.topk);
  e.add("row_offsets", h5::Type::kInt64, std::move(offsets), {count + 1}, 256);
  e.values("topk_values", std::move(t.topk_values), {tokens, k}, meta.dtype == "float16", 1024);
  if (meta.index_dtype == "uint16") {
    std::vector<std::uint16_t> idx(t.topk_indices.size());  // the low 16 bits of ids < 65536
    std::transform(t.topk_indices.begin(), t.topk_indices.end(), idx.begin(),
                   [](std::int64_t i) { return static_cast<std::uint16_t>(i); });
    e.add("topk_indices", h5::Type::kUInt16, std::move(idx), {tokens, k}, 1024);
  } else {
    std::vector<std::int32_t> idx(t.topk_indices.begin(), t.topk_indices.end());
    e.add("topk_indices", h5::Type::kInt32, std::move(idx), {tokens, k}, 1024);
  }
  e.values("lse", std::move(t.lse), {tokens}, false, 1024);
}

}  // namespace

EncodedShard encode_shard(const StoreMeta& meta, const ShardRange& r, ShardTargets t) {
  const auto count = static_cast<hsize_t>(r.end - r.begin);
  DISTILL_CHECK(t.example_ids.size() == count, StoreError, "shard ", shard_name(r), " got ", t.example_ids.size(),
                " example ids for ", count, " rows");
  EncodedShard out;
  out.range = r;
  out.example_ids = std::move(t.example_ids);
  Encoder e(r, out);
  if (meta.targets == "mlm_topk") {
    encode_topk(e, meta, count, t);
    return out;
  }
  const auto seq = static_cast<hsize_t>(meta.seq);
  e.values("logits", std::move(t.logits), {count, static_cast<hsize_t>(meta.num_labels)}, meta.dtype == "float16", 256);
  for (long l : meta.hidden_layers)
    e.values("hidden/" + std::to_string(l), std::move(t.hidden[l]),
             {count, seq, static_cast<hsize_t>(meta.hidden_size)}, true, 1);
  for (long l : meta.attention_layers)
    e.values("attention/" + std::to_string(l), std::move(t.attention[l]),
             {count, static_cast<hsize_t>(meta.heads), seq, seq}, true, 1);
  for (long l : meta.qkv_layers)
    for (auto [part, m] : {std::pair{"query/", &t.query}, {"key/", &t.key}, {"value/", &t.value}})
      e.values(part + std::to_string(l), std::move((*m)[l]), {count, seq, static_cast<hsize_t>(meta.hidden_size)}, true,
               1);
  return out;
}

}  // namespace distill
