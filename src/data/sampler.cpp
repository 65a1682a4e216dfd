#include "distill/data/sampler.h"

#include <algorithm>

#include "distill/util/error.h"

namespace distill {

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t SplitMix64::below(std::uint64_t n) {
  // Rejection sampling: no modulo bias.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v;
  do v = next();
  while (v >= limit);
  return v % n;
}

double SplitMix64::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  SplitMix64 r(seed ^ (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full));
  return r.next();
}

std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> p(n);
  for (std::int64_t i = 0; i < n; ++i) p[i] = i;
  SplitMix64 r(mix_seed(seed, static_cast<std::uint64_t>(epoch)));
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[r.below(static_cast<std::uint64_t>(i) + 1)]);
  return p;
}

std::vector<std::int64_t> grouped_order(const std::vector<std::int64_t>& group_ends, std::uint64_t seed,
                                        std::int64_t epoch) {
  std::vector<std::int64_t> out;
  std::int64_t begin = 0;
  for (std::size_t g = 0; g < group_ends.size(); ++g) {
    const auto end = group_ends[g];
    DISTILL_CHECK(end >= begin, DataError, "group ends must ascend");
    for (auto i : epoch_order(end - begin, mix_seed(seed, 0x67726f7570, g), epoch)) out.push_back(begin + i);
    begin = end;
  }
  return out;
}

void DistributedSampler::set_epoch_order(std::int64_t epoch, std::vector<std::int64_t> order) {
  DISTILL_CHECK(static_cast<std::int64_t>(order.size()) == n_, DataError, "epoch order of ", order.size(),
                " rows for a split of ", n_);
  fixed_epoch_ = epoch;
  fixed_order_ = std::move(order);
  cached_epoch_ = -1;
}

DistributedSampler::DistributedSampler(std::int64_t n, std::int64_t batch, int rank, int world, std::uint64_t seed,
                                       bool shuffle, std::int64_t block, std::int64_t window)
    : n_(n),
      batch_(batch),
      rank_(rank),
      world_(world),
      seed_(seed),
      shuffle_(shuffle),
      full_batch_(batch >= n),
      shuffle_block_(block),
      shuffle_window_(window) {
  DISTILL_CHECK(block >= 0 && window >= 0, ConfigError, "bad sampler: block ", block, ", window ", window);
  DISTILL_CHECK(n > 0, DataError, "cannot sample from an empty split");
  DISTILL_CHECK(batch > 0 && world > 0 && rank >= 0 && rank < world, ConfigError, "bad sampler: batch ", batch,
                ", rank ", rank, ", world ", world);
  if (!full_batch_) return;
  for (std::int64_t i = n * rank / world; i < n * (rank + 1) / world; ++i) block_.push_back(i);
  DISTILL_CHECK(!block_.empty(), ConfigError, "full-batch training of ", n, " examples on ", world,
                " ranks leaves rank ", rank, " without examples; use fewer ranks");
  share_ = static_cast<double>(block_.size()) * world / static_cast<double>(n);
}

std::int64_t DistributedSampler::steps_per_epoch() const {
  if (full_batch_) return 1;
  const std::int64_t global = batch_ * world_;
  return (n_ + global - 1) / global;
}

std::int64_t DistributedSampler::at(std::int64_t epoch, std::int64_t p) {
  if (epoch != cached_epoch_) {
    const std::int64_t block = shuffle_block_, blocks = (n_ + block - 1) / block;
    block_order_ = epoch_order(blocks, mix_seed(seed_, 0x626c6f636b, static_cast<std::uint64_t>(epoch)), 0);
    window_starts_.clear();
    std::int64_t pos = 0;
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (b % shuffle_window_ == 0) window_starts_.push_back(pos);
      pos += std::min(n_, (block_order_[b] + 1) * block) - block_order_[b] * block;
    }
    windows_.clear();
    cached_epoch_ = epoch;
  }
  const auto w = static_cast<std::int64_t>(std::upper_bound(window_starts_.begin(), window_starts_.end(), p) -
                                           window_starts_.begin()) -
                 1;
  auto it = windows_.find(w);
  if (it == windows_.end()) {
    for (auto e = windows_.begin(); e != windows_.end();) e = e->first == w - 1 ? std::next(e) : windows_.erase(e);
    std::vector<std::int64_t> rows;
    const std::int64_t block = shuffle_block_, window = shuffle_window_;
    const auto last = std::min<std::int64_t>(static_cast<std::int64_t>(block_order_.size()), (w + 1) * window);
    for (auto b = w * window; b < last; ++b)
      for (auto r = block_order_[b] * block; r < std::min(n_, (block_order_[b] + 1) * block); ++r) rows.push_back(r);
    std::vector<std::int64_t> shuffled(rows.size());
    const auto perm = epoch_order(static_cast<std::int64_t>(rows.size()),
                                  mix_seed(seed_, 0x77696e646f77, static_cast<std::uint64_t>(epoch)), w);
    for (std::size_t i = 0; i < rows.size(); ++i) shuffled[i] = rows[perm[i]];
    it = windows_.emplace(w, std::move(shuffled)).first;
  }
  return it->second[p - window_starts_[w]];
}

void DistributedSampler::set_rows(std::vector<std::int64_t> rows) {
  DISTILL_CHECK(static_cast<std::int64_t>(rows.size()) == n_, Error, "sampler of ", n_, " positions given ",
                rows.size(), " rows");
  rows_ = std::move(rows);
}

std::vector<std::int64_t> DistributedSampler::mapped(std::vector<std::int64_t> positions) const {
  if (!rows_.empty())
    for (auto& p : positions) p = rows_[static_cast<std::size_t>(p)];
  return positions;
}

std::vector<std::int64_t> DistributedSampler::indices(const Cursor& c) {
  if (full_batch_) return mapped(block_);
  if (shuffle_ && block_shuffle() && c.epoch != fixed_epoch_) {
    std::vector<std::int64_t> out(batch_);
    const std::int64_t start = (c.step * world_ + rank_) * batch_;
    for (std::int64_t i = 0; i < batch_; ++i) out[i] = at(c.epoch, (start + i) % n_);
    return mapped(std::move(out));
  }
  if (c.epoch != cached_epoch_) {
    if (c.epoch == fixed_epoch_) {
      order_ = fixed_order_;
    } else if (shuffle_) {
      order_ = epoch_order(n_, seed_, c.epoch);
    } else {
      order_.resize(n_);
      for (std::int64_t i = 0; i < n_; ++i) order_[i] = i;
    }
    cached_epoch_ = c.epoch;
  }
  std::vector<std::int64_t> out(batch_);
  const std::int64_t start = (c.step * world_ + rank_) * batch_;
  for (std::int64_t i = 0; i < batch_; ++i) out[i] = order_[(start + i) % n_];
  return mapped(std::move(out));
}

Cursor DistributedSampler::advance(Cursor c) const {
  if (++c.step >= steps_per_epoch()) {
    c.step = 0;
    ++c.epoch;
  }
  return c;
}

}  // namespace distill
