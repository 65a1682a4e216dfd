// `distill mix`: one transfer set from several prepared data sets with weights (Note [mixed
// transfer sets]). The result is an ordinary dataset.h5, so precompute, training, exact resume and
// eval need nothing new.
//
// Note [mixed transfer sets]: source s (a split of a data set) with weight w contributes floor(w)
// copies of every row, then round((w - floor(w)) n_s) rows drawn by a seeded permutation (the same
// rows for every run of the same seed), in file order. The mix's train split is the sources in the
// order given. Its dev and test splits are those of one data set (by default the first source), with
// their ids. A train row's id is id_offset + copy * id_span + its source id; root attribute `mix`
// (JSON) lists per source its path, split, content hash, weight, rows, id_offset and id_span, so
// every row traces back. Sources must agree on task, vocabulary, row length, features and label
// names; unlabeled rows stay unlabeled (Note [unlabeled rows]).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace distill {

struct MixSource {
  std::string path, split = "train";
  double weight = 1.0;
};

// "PATH", "PATH:SPLIT", "PATH:WEIGHT" or "PATH:SPLIT:WEIGHT"; ConfigError naming the text.
MixSource parse_mix_source(const std::string& text);

struct MixOptions {
  std::vector<MixSource> sources;
  std::string eval_from;  // data set whose dev and test splits the mix keeps; empty = the first source; "none"
  std::uint64_t seed = 1;
};

struct MixReport {
  std::vector<std::int64_t> rows;  // per source
  std::int64_t train = 0, labeled = 0, dev = 0, test = 0;
  std::string content_hash;
};

// Checks the sources fit each other (ConfigError / DataError naming both files and the difference)
// and writes the mix to `out` block by block, atomically.
MixReport write_mix(const MixOptions& o, const std::string& out);

}  // namespace distill
