#include "distill/data/streaming.h"

#include <algorithm>

#include "distill/data/sampler.h"
#include "distill/store/reader.h"
#include "distill/store/schema.h"
#include "distill/util/log.h"

namespace distill {

std::vector<std::int64_t> streaming_first_epoch_order(const ShardWindows& w, std::uint64_t seed) {
  const auto ranges = shard_ranges(w.num_examples, w.shard_size);
  const std::int64_t window = w.window, count = static_cast<std::int64_t>(ranges.size());
  std::vector<std::int64_t> ends;
  for (std::int64_t e = window; e < count + window; e += window) ends.push_back(ranges[std::min(e, count) - 1].end);
  return grouped_order(ends, seed, 0);
}

std::function<double(std::int64_t, const std::vector<std::int64_t>&)> wait_for_committed_rows(StoreReader& reader,
                                                                                              const ShardWindows& w,
                                                                                              double timeout_s,
                                                                                              bool log_first) {
  const std::int64_t count = static_cast<std::int64_t>(shard_ranges(w.num_examples, w.shard_size).size());
  auto* r = &reader;
  const std::int64_t window = w.window, shard_size = w.shard_size;
  return
      [r, window, count, timeout_s, shard_size, log_first](std::int64_t epoch, const std::vector<std::int64_t>& rows) {
        std::int64_t need = count;
        if (epoch == 0) {
          std::int64_t last = 0;
          for (auto row : rows) last = std::max(last, row / shard_size);
          need = std::min(count, (last / window + 1) * window);
        }
        if (r->shards_loaded() >= need) return 0.0;
        const auto before = r->shards_loaded();
        const double waited = r->wait_for_shards(need, timeout_s);
        if (log_first && before == 0)
          spdlog::info("streaming: first batch ready after {:.2f}s with {} of {} shards committed", waited,
                       r->shards_loaded(), count);
        return waited;
      };
}

}  // namespace distill
