// Deterministic distributed sampling. The order of an epoch is a pure function of
// (n, seed, epoch); rank r of W takes, at step s, the B positions starting at (s * W + r) * B of
// that order, wrapping around the end so every rank runs the same number of steps.
// Full batch (B >= n): one step per epoch, in which rank r takes rows [n r / W, n (r + 1) / W).
// Block shuffle (Note [lazy rows]): with a block of K rows and a window of M blocks, and n > K M,
// the epoch's order permutes the blocks of K consecutive rows, cuts that sequence into windows of
// M blocks and permutes the rows within each window. A window's rows come from M blocks, so a
// rank reads M blocks per K M positions instead of one per row, and holds O(K M) indices instead
// of n; the price is that rows in different windows never share a batch in that epoch (batches
// mix M of the n / K blocks). Every row is still used exactly once per epoch. n <= K M (or M = 0)
// gives one permutation of the whole split.
#pragma once
#include <cstdint>
#include <map>
#include <vector>

namespace distill {

// A small, portable 64-bit generator (splitmix64): the same stream on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next();
  std::uint64_t below(std::uint64_t n);  // uniform in [0, n), n > 0
  double uniform();                      // uniform in [0, 1)

 private:
  std::uint64_t s_;
};

// Mixes a seed with further integers (epoch, rank, ...) into a new seed.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0);

// A permutation of 0..n-1 for (seed, epoch) (Fisher-Yates over SplitMix64).
std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

// An order that shuffles only within consecutive groups: rows [ends[g-1], ends[g]) are permuted
// among themselves by (seed, epoch, g) and the groups keep their order (streaming's first epoch).
std::vector<std::int64_t> grouped_order(const std::vector<std::int64_t>& group_ends, std::uint64_t seed,
                                        std::int64_t epoch);

// Where a sampler stands: the next step to run.
struct Cursor {
  std::int64_t epoch = 0;
  std::int64_t step = 0;  // within the epoch
};

class DistributedSampler {
 public:
  // Throws ConfigError when full-batch mode leaves `rank` without rows (more ranks than rows).
  // `block` and `window` (blocks) set the block shuffle; window 0 = a full permutation.
  DistributedSampler(std::int64_t n, std::int64_t batch, int rank, int world, std::uint64_t seed, bool shuffle = true,
                     std::int64_t block = 0, std::int64_t window = 0);
  // Steps per epoch: ceil(n / (world * batch)) (1 in full-batch mode), the same on every rank.
  std::int64_t steps_per_epoch() const;
  // The indices of `rank` for step `c`.
  std::vector<std::int64_t> indices(const Cursor& c);
  // The step after `c`: the next one of its epoch, or the first of the next epoch.
  Cursor advance(Cursor c) const;
  // Full-batch mode: batch >= n.
  bool full_batch() const { return full_batch_; }
  // Examples per step over all ranks: batch * world, or n in full-batch mode.
  std::int64_t global_batch() const { return full_batch_ ? n_ : batch_ * world_; }
  // The weight of this rank's mean loss: 1, or in full-batch mode its rows * world / n, so that the
  // average over the ranks of the weighted gradients is exactly the gradient of the mean over all n.
  double share() const { return share_; }
  // Positions 0..n-1 stand for these rows (a subset of a larger split): indices() returns rows[i].
  void set_rows(std::vector<std::int64_t> rows);
  // Uses `order` (a permutation of 0..n-1) for `epoch` instead of the seeded shuffle.
  void set_epoch_order(std::int64_t epoch, std::vector<std::int64_t> order);
  // Whether the block shuffle is in use (n > block * window > 0).
  bool block_shuffle() const {
    return shuffle_block_ > 0 && shuffle_window_ > 0 && n_ > shuffle_block_ * shuffle_window_;
  }

 private:
  std::int64_t n_, batch_;
  int rank_, world_;
  std::uint64_t seed_;
  bool shuffle_;
  bool full_batch_;
  std::vector<std::int64_t> block_;  // full-batch mode: this rank's rows
  double share_ = 1.0;
  std::int64_t shuffle_block_, shuffle_window_;
  std::int64_t cached_epoch_ = -1;
  std::vector<std::int64_t> order_;  // a full permutation (no block shuffle)
  // Block shuffle: the epoch's block order, the first position of each window, and the rows of
  // the windows last used (at most two).
  std::vector<std::int64_t> block_order_, window_starts_;
  std::map<std::int64_t, std::vector<std::int64_t>> windows_;
  std::int64_t at(std::int64_t epoch, std::int64_t position);  // the row at `position` of the epoch
  std::int64_t fixed_epoch_ = -1;
  std::vector<std::int64_t> fixed_order_;
  std::vector<std::int64_t> rows_;  // set_rows; empty = positions are rows
  std::vector<std::int64_t> mapped(std::vector<std::int64_t> positions) const;
};

}  // namespace distill
