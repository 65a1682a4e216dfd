// Writes a dataset.h5 block by block in bounded memory: rows are appended to extendible chunked
// datasets (Fletcher32), checked and hashed as they arrive; finish() writes the attributes and
// renames the file into place, so nothing appears under the final name before it is whole.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distill/data/dataset.h"
#include "distill/io/h5.h"

namespace distill {

class DatasetWriter {
 public:
  // `header`: task, vocab_size, vocab_hash, max_length and label_names (its splits are ignored).
  // `check_ids`: keep every example id (8 bytes a row) to refuse repeats at finish(); off when the
  // caller guarantees unique ids.
  DatasetWriter(std::string path, const Dataset& header, bool check_ids = true);
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;
  // Removes the temporary file unless finish() ran.
  ~DatasetWriter();
  // Appends the in-memory rows `rows` to split `name` (created on first use; an empty block makes
  // an empty split). Throws DataError naming the file, split and example on bad rows.
  void append(const std::string& name, const DataSplit& rows);
  // Rows must carry scores (Note [regression]).
  bool regression() const { return header_.regression; }
  // A further root string attribute (provenance, outside the content hash), written by finish().
  void set_attr(const std::string& name, const std::string& value) { extra_attrs_[name] = value; }
  // Checks example ids are unique, writes the attributes, syncs and renames into place; returns
  // the content hash.
  std::string finish();

 private:
  struct Split {
    std::int64_t n = 0, seq = 0, dim = 0;
    std::int64_t max_input_id = -1, max_token_type = -1;
    std::int64_t labeled = 0;  // rows with a label
  };
  std::string path_, tmp_;
  Dataset header_;
  std::unique_ptr<h5::File> file_;
  std::map<std::string, Split> splits_;
  std::map<std::string, std::vector<std::int64_t>> ids_;  // every example id by split (8 bytes a row)
  ContentHasher hash_;
  std::map<std::string, std::string> extra_attrs_;
  bool check_ids_;
  bool done_ = false;
};

}  // namespace distill
