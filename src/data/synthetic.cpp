#include "distill/data/synthetic.h"

#include "distill/data/dataset_writer.h"
#include "distill/data/sampler.h"
#include "distill/data/split_file.h"
#include "distill/util/error.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>

namespace distill {

namespace {

constexpr std::int32_t kPad = 0, kCls = 2, kSep = 3, kFirstWord = 5;

// The checked options as a data set without splits.
Dataset synthetic_header(const SyntheticOptions& o) {
  DISTILL_CHECK(o.num_labels >= 2, ConfigError, "synthetic num_labels must be >= 2, got ", o.num_labels);
  DISTILL_CHECK(o.seq >= 8, ConfigError, "synthetic seq must be >= 8, got ", o.seq);
  const std::int64_t words = o.vocab_size - kFirstWord;
  DISTILL_CHECK(words > 2 * o.num_labels * o.markers_per_class, ConfigError, "synthetic vocab_size ", o.vocab_size,
                " is too small for ", o.num_labels, " classes of ", o.markers_per_class, " markers");
  Dataset d;
  d.vocab_size = o.vocab_size;
  d.max_length = o.seq;
  d.vocab_hash = "synthetic-" + std::to_string(o.vocab_size);
  for (std::int64_t c = 0; c < o.num_labels; ++c) d.label_names.push_back("class" + std::to_string(c));
  return d;
}

// Calls emit(split, rows) with consecutive blocks of at most kDatasetChunkRows rows of each split
// (train, dev, test), drawn from one stream; returns the header (no splits).
Dataset synthetic_rows(const SyntheticOptions& o, const std::function<void(const char*, const DataSplit&)>& emit) {
  Dataset d = synthetic_header(o);
  const std::int64_t words = o.vocab_size - kFirstWord;
  // Markers of class c: ids kFirstWord + c * markers + j; filler uses the remaining ids.
  const std::int64_t marker_ids = o.num_labels * o.markers_per_class;
  SplitMix64 rng(o.seed);
  std::int64_t next_id = 0;
  auto make = [&](const char* split, std::int64_t total) {
    std::int64_t done = 0;
    do {  // an empty split still gets its (empty) block
      const std::int64_t n = std::min(kDatasetChunkRows, total - done);
      done += n;
      DataSplit s;
      s.n = n;
      s.seq = o.seq;
      s.input_ids.assign(n * o.seq, kPad);
      s.attention_mask.assign(n * o.seq, 0);
      s.token_type_ids.assign(n * o.seq, 0);
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t len = 6 + static_cast<std::int64_t>(rng.below(o.seq - 7)) + 1;  // 7..seq
        std::vector<std::int64_t> count(o.num_labels, 0);
        std::int32_t* row = &s.input_ids[i * o.seq];
        row[0] = kCls;
        row[len - 1] = kSep;
        for (std::int64_t t = 1; t < len - 1; ++t) {
          if (rng.uniform() < 0.2) {
            auto c = static_cast<std::int64_t>(rng.below(o.num_labels));
            ++count[c];
            row[t] = static_cast<std::int32_t>(kFirstWord + c * o.markers_per_class + rng.below(o.markers_per_class));
          } else {
            row[t] = static_cast<std::int32_t>(kFirstWord + marker_ids + rng.below(words - marker_ids));
          }
        }
        for (std::int64_t t = 0; t < len; ++t) s.attention_mask[i * o.seq + t] = 1;
        // Label: most markers, ties to the lowest class; then label noise.
        std::int64_t y = 0;
        for (std::int64_t c = 1; c < o.num_labels; ++c)
          if (count[c] > count[y]) y = c;
        if (rng.uniform() < o.noise) y = static_cast<std::int64_t>(rng.below(o.num_labels));
        s.labels.push_back(y);
        s.example_id.push_back(next_id++);
      }
      emit(split, s);
    } while (done < total);
  };
  make("train", o.train);
  make("dev", o.dev);
  make("test", o.test);
  return d;
}

}  // namespace

Dataset make_synthetic(const SyntheticOptions& o) {
  std::map<std::string, std::vector<DataSplit>> blocks;
  Dataset d = synthetic_rows(o, [&](const char* split, const DataSplit& s) { blocks[split].push_back(s); });
  for (auto& [name, parts] : blocks) {
    DataSplit all;
    all.seq = o.seq;
    for (const auto& p : parts)
      for (std::int64_t r = 0; r < p.n; ++r) append_row(p, r, all);
    d.splits[name] = std::move(all);
  }
  return d;
}

std::string write_synthetic(const std::string& path, const SyntheticOptions& o) {
  DatasetWriter w(path, synthetic_header(o), /*check_ids=*/false);  // ids count up from 0
  synthetic_rows(o, [&](const char* split, const DataSplit& s) { w.append(split, s); });
  return w.finish();
}

}  // namespace distill
