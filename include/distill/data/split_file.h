// Note [lazy rows]: a split of a dataset.h5 stays on disk. Its rows are read a block at a time
// (the file's chunk rows, kDatasetChunkRows), so every HDF5 chunk read is checked once by its
// Fletcher32 checksum and then by check_split_rows; the last cache_blocks blocks are kept (LRU).
// Memory is O(cache_blocks x block) whatever the split's size. The sampler shuffles blocks and
// then rows within a window of blocks (data/sampler.h), so a window's blocks are read once each.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "distill/data/dataset.h"
#include "distill/io/h5.h"

namespace distill {

class SplitFile {
 public:
  // `header` gives the file, task, vocabulary and labels (its splits are ignored); `shape` the
  // split's n, seq, dim and maxima.
  SplitFile(const Dataset& header, std::string split, const DataSplit& shape, std::int64_t block_rows);
  // Rows `rows` (any order, repeats allowed) appended to the in-memory split `out`. Safe to call
  // from several threads.
  void select(const std::vector<std::int64_t>& rows, DataSplit& out) const;
  // Block b (rows [b * block, ...)), read without touching the cache; safe beside select() (each
  // call is one HDF5 read under HDF5's own lock).
  DataSplit read_block(std::int64_t b) const;
  std::int64_t block_rows() const { return block_; }
  bool regression() const { return header_.regression; }  // rows carry scores (Note [regression])
  std::int64_t blocks() const { return (shape_.n + block_ - 1) / block_; }
  // Blocks kept in memory (at least 1).
  void set_cache_blocks(std::size_t n);
  // Rows read from the file so far (instrumentation: reads are lazy).
  std::int64_t rows_read() const;

 private:
  Dataset header_;
  std::string split_;
  DataSplit shape_;  // n, seq, dim, maxima; no rows
  std::int64_t block_;
  std::unique_ptr<h5::File> file_;
  mutable std::mutex mu_;
  mutable std::list<std::pair<std::int64_t, std::shared_ptr<const DataSplit>>> cache_;  // most recent first
  std::size_t cache_blocks_ = 4;
  mutable std::int64_t rows_read_ = 0;
  std::shared_ptr<const DataSplit> block(std::int64_t b) const;  // through the cache; mu_ held
};

// Appends row `r` of the in-memory split `src` to `out` (every array `src` has).
void append_row(const DataSplit& src, std::int64_t r, DataSplit& out);

}  // namespace distill
