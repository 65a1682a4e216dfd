// Training on a store that is still being written (distill run): the first epoch visits the
// shards in their global order, shuffled only within windows of a few shards, and a batch waits
// until the shards holding its rows are committed.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace distill {

class StoreReader;

struct ShardWindows {
  std::int64_t num_examples = 0;  // rows of the split
  std::int64_t shard_size = 0;    // rows per shard
  std::int64_t window = 1;        // shards whose rows the first epoch shuffles together
};

// The first epoch's order of the split's rows: windows in order, each window's rows permuted by
// `seed` (grouped_order, epoch 0).
std::vector<std::int64_t> streaming_first_epoch_order(const ShardWindows& w, std::uint64_t seed);

// For TrainJob::wait_for_rows: blocks until `reader` holds the shards up to the end of the window
// of the batch's last row (epoch 0) or every shard (later epochs) and returns the seconds waited;
// StoreError after `timeout_s` seconds without a new commit. With `log_first` it logs when the
// first batch is ready. Called from the loader thread; `reader` must outlive the hook.
std::function<double(std::int64_t epoch, const std::vector<std::int64_t>& rows)> wait_for_committed_rows(
    StoreReader& reader, const ShardWindows& w, double timeout_s, bool log_first);

}  // namespace distill
