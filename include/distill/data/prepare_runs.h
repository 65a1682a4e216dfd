// The sorted runs of parallel prepare (Note [parallel prepare] in data/prepare.h): scratch HDF5
// files of tokenized examples sorted by (record_key, line), written by each rank and read back
// block by block by rank 0's merge.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "distill/data/tokenizer.h"
#include "distill/io/h5.h"

namespace distill {

// A tokenized record: its record index (within its share in a run), class, encoding, line and, for
// regression, its target (Note [regression]).
struct Example {
  std::int64_t id;
  std::int64_t label;
  Encoding enc;
  long line = 0;  // where the record starts: its place in the split order (record_key)
  float score = std::numeric_limits<float>::quiet_NaN();
};

struct RunRow {
  std::uint64_t key;
  Example e;
};

// Sorts `rows` by (key, line), writes them as run `k` of `part` under `dir` (rows of `seq_len`
// tokens), clears them and returns the file's path.
std::string write_run(std::vector<RunRow>& rows, long seq_len, const std::string& dir, int part, int k);

// Reads a run a block at a time, in order.
class RunReader {
 public:
  // Opens the run only to read a block, so any number of runs can be merged.
  RunReader(const std::string& path, int part, long seq, hsize_t block);
  bool done() const { return at_ >= n_; }
  std::uint64_t key() const { return static_cast<std::uint64_t>(key_[at_ - first_]); }
  long line() const { return static_cast<long>(line_[at_ - first_]); }
  int part() const { return part_; }
  // The current row as an example (id: the index within its share), then advances.
  Example take();

 private:
  void refill();
  std::string path_;
  int part_;
  long seq_;
  hsize_t block_, n_ = 0, at_ = 0, first_ = 0;
  std::vector<std::int64_t> key_, line_, index_, label_;
  std::vector<float> score_;
  std::vector<std::int32_t> ids_, mask_, types_;
};

}  // namespace distill
