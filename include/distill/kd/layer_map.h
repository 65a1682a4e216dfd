// Layer maps: which teacher layer each student layer learns from. Index convention everywhere
// (DESIGN.md): hidden state 0 is the embedding output, 1..L the blocks; attention maps are 1..L.
// Specs:
//   "uniform"       student layer m <- teacher layer m * (N / M), m = 1..M (N divisible by M)
//   "last"          student layer m <- teacher layer N - M + m
//   "skip:2,4,6"    student layer m <- the m-th listed teacher layer (one per student layer)
//   "1:3,2:6"       explicit student:teacher pairs ("0:0" maps the embeddings)
//   "" or "none"    no map
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace distill {

struct LayerMap {
  std::vector<std::pair<long, long>> pairs;  // (student index, teacher index), by student index
  bool empty() const { return pairs.empty(); }
};

// Parses and validates `spec` for a student of `student_layers` and a teacher of
// `teacher_layers`. `kind` is "hidden" (indices 0..L) or "attention" (1..L); `name` (e.g.
// "distill.hidden_map") prefixes every error. Throws ConfigError on out-of-range indices, counts
// that do not match, duplicate student layers, or N not divisible by M for "uniform".
LayerMap parse_layer_map(const std::string& spec, long student_layers, long teacher_layers, const std::string& kind,
                         const std::string& name);

// Teacher layers named by a map, ascending, without repeats.
std::vector<long> teacher_layers_of(const LayerMap& m);

}  // namespace distill
