// How prepare splits rows into train, dev and test: a seeded permutation, and a seeded order within
// each split (which fixes the files prepare writes).
#pragma once
#include <cstdint>
#include <vector>

#include "distill/data/prepare.h"
#include "distill/data/sampler.h"

namespace distill {

// The split: a seeded permutation of n rows; part[i] is 0 (train), 1 (dev) or 2 (test).
std::vector<int> split_parts(std::int64_t n, const PrepareOptions& o);

// The rows of split `k` in a seeded random order.
template <typename T>
std::vector<T> in_split_order(const std::vector<T>& rows, std::uint64_t seed, int k) {
  std::vector<T> out;
  for (auto i : epoch_order(static_cast<std::int64_t>(rows.size()), mix_seed(seed, 0x73706c6974, k), 0))
    out.push_back(rows[i]);
  return out;
}

// ConfigError unless the dev and test fractions are >= 0 and leave room for train.
void check_fractions(const PrepareOptions& o);

}  // namespace distill
