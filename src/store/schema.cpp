#include "distill/store/schema.h"

#include <cstdio>

#include "distill/util/error.h"

namespace distill {

std::string shard_name(const ShardRange& r) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard-%09lld-%09lld.h5", static_cast<long long>(r.begin),
                static_cast<long long>(r.end - 1));
  return buf;
}

std::vector<ShardRange> shard_ranges(std::int64_t n, std::int64_t shard_size) {
  DISTILL_CHECK(shard_size > 0, ConfigError, "store.shard_size must be positive, got ", shard_size);
  std::vector<ShardRange> out;
  for (std::int64_t b = 0; b < n; b += shard_size) out.push_back({b, std::min(n, b + shard_size)});
  return out;
}

h5::Type store_dtype(const std::string& name) {
  if (name == "float16") return h5::Type::kFloat16;
  if (name == "float32") return h5::Type::kFloat32;
  throw ConfigError(str("store.dtype is '", name, "', expected float16 or float32"));
}

}  // namespace distill
