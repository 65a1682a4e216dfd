// A learnable synthetic sequence-classification task over token ids. Each class owns a set of
// marker tokens; an example is random filler with markers of several classes mixed in, and its
// label is the class with the most markers; a `noise` share of labels is then redrawn uniformly.
#pragma once
#include <cstdint>
#include <string>

#include "distill/data/dataset.h"

namespace distill {

struct SyntheticOptions {
  std::int64_t train = 4000, dev = 500, test = 500;  // examples per split
  std::int64_t vocab_size = 1000;                    // ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK]
  std::int64_t seq = 32;                             // padded length
  std::int64_t num_labels = 2;
  std::int64_t markers_per_class = 16;
  double noise = 0.05;  // share of labels replaced by a uniform draw
  std::uint64_t seed = 17;
};

// Deterministic in the options.
Dataset make_synthetic(const SyntheticOptions& o);
// The same data set written to `path` block by block, in bounded memory; returns its content hash.
std::string write_synthetic(const std::string& path, const SyntheticOptions& o);

}  // namespace distill
