// `distill augment` without the model: which word pieces a copy replaces and with what, and the
// noise and mixup copies of feature vectors (Note [augmentation]). Every draw is a pure function of
// (seed, example id, copy), so a copy is reproducible on its own.
//
// Note [augmentation]: TinyBERT-style copies of a split, on word pieces. Copy c of example e
// replaces k = max(1, round(share m)) of its m replaceable pieces (real tokens that are not
// bracketed specials such as [CLS], [SEP], [UNK], [unused0]). With a masked-LM model all k
// positions are masked at once and each gets one of the model's top-k predictions at that
// position, drawn uniformly among those of the same kind (a word start for a word start, a "##"
// continuation for a continuation) that are not specials and differ from the original; when none
// is left, or without a model, a uniform random piece of the same kind. So exactly k pieces change.
// The copies are unlabeled (Note [unlabeled rows]): the teacher labels them. Their ids are
// source id * copies + c. Feature copies: x + sigma * sd * N(0, 1) per feature (sd over the split),
// or mixup lambda x + (1 - lambda) x_j with lambda ~ Beta(a, a) and a uniform partner j.
#pragma once
#include <cstdint>
#include <vector>

#include "distill/data/sampler.h"
#include "distill/data/tokenizer.h"

namespace distill {

// Replacement classes of a vocabulary's pieces.
struct ReplacementVocab {
  enum Kind : std::int8_t { kSpecial = 0, kInitial = 1, kContinuation = 2 };
  std::vector<std::int8_t> kind;  // by id
  std::vector<std::int32_t> initial, continuation;
  static ReplacementVocab from(const WordPieceTokenizer& tok);
};

// The generator of copy `copy` of example `id`.
SplitMix64 augment_rng(std::uint64_t seed, std::int64_t id, std::int64_t copy);

// The positions (ascending) of a row of `seq` tokens that the copy replaces (Note [augmentation]).
std::vector<std::int32_t> replaced_positions(const std::int32_t* ids, const std::int32_t* mask, std::int64_t seq,
                                             const ReplacementVocab& v, double share, SplitMix64& rng);

// The piece that replaces `original`: uniform among `candidates` (the model's top-k, may be empty)
// of the same kind, not special and not `original`; else a uniform random piece of that kind.
std::int32_t pick_replacement(std::int32_t original, const std::vector<std::int32_t>& candidates,
                              const ReplacementVocab& v, SplitMix64& rng);

double normal(SplitMix64& rng);          // N(0, 1), Box-Muller
double beta(SplitMix64& rng, double a);  // Beta(a, a), a > 0

}  // namespace distill
