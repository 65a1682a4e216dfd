#include "distill/data/augment.h"

#include <algorithm>
#include <cmath>

#include "distill/util/error.h"

namespace distill {

ReplacementVocab ReplacementVocab::from(const WordPieceTokenizer& tok) {
  ReplacementVocab v;
  v.kind.assign(static_cast<std::size_t>(tok.size()), kSpecial);
  for (std::int32_t id = 0; id < tok.size(); ++id) {
    const auto& t = tok.token(id);
    if (t.empty() || (t.front() == '[' && t.back() == ']')) continue;
    const bool cont = t.size() > 2 && t.compare(0, 2, "##") == 0;
    v.kind[static_cast<std::size_t>(id)] = cont ? kContinuation : kInitial;
    (cont ? v.continuation : v.initial).push_back(id);
  }
  DISTILL_CHECK(!v.initial.empty(), DataError, "the vocabulary has no word pieces to replace with");
  return v;
}

SplitMix64 augment_rng(std::uint64_t seed, std::int64_t id, std::int64_t copy) {
  return SplitMix64(
      mix_seed(mix_seed(seed, 0x6175676d), static_cast<std::uint64_t>(id), static_cast<std::uint64_t>(copy)));
}

std::vector<std::int32_t> replaced_positions(const std::int32_t* ids, const std::int32_t* mask, std::int64_t seq,
                                             const ReplacementVocab& v, double share, SplitMix64& rng) {
  std::vector<std::int32_t> cand;
  for (std::int64_t p = 0; p < seq; ++p) {
    const auto id = ids[p];
    if (mask[p] == 1 && id >= 0 && static_cast<std::size_t>(id) < v.kind.size() &&
        v.kind[static_cast<std::size_t>(id)] != ReplacementVocab::kSpecial)
      cand.push_back(static_cast<std::int32_t>(p));
  }
  if (cand.empty()) return {};
  const auto m = static_cast<std::int64_t>(cand.size());
  const auto k = std::min(m, std::max<std::int64_t>(1, std::llround(share * static_cast<double>(m))));
  // Partial Fisher-Yates: the first k of a uniform permutation.
  for (std::int64_t i = 0; i < k; ++i) std::swap(cand[i], cand[i + static_cast<std::int64_t>(rng.below(m - i))]);
  cand.resize(static_cast<std::size_t>(k));
  std::sort(cand.begin(), cand.end());
  return cand;
}

std::int32_t pick_replacement(std::int32_t original, const std::vector<std::int32_t>& candidates,
                              const ReplacementVocab& v, SplitMix64& rng) {
  const auto kind = v.kind.at(static_cast<std::size_t>(original));
  std::vector<std::int32_t> ok;
  for (auto c : candidates)
    if (c != original && c >= 0 && static_cast<std::size_t>(c) < v.kind.size() &&
        v.kind[static_cast<std::size_t>(c)] == kind)
      ok.push_back(c);
  if (!ok.empty()) return ok[rng.below(ok.size())];
  const auto& pool = kind == ReplacementVocab::kContinuation && !v.continuation.empty() ? v.continuation : v.initial;
  DISTILL_CHECK(pool.size() > 1 || pool[0] != original, DataError, "no piece can replace token ", original);
  while (true) {
    const auto c = pool[rng.below(pool.size())];
    if (c != original) return c;
  }
}

double normal(SplitMix64& rng) {
  const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();  // u1 in (0, 1]
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

namespace {
// Gamma(a, 1) by Marsaglia and Tsang (a < 1 boosted by U^(1/a)).
double gamma(SplitMix64& rng, double a) {
  if (a < 1) return gamma(rng, a + 1) * std::pow(1.0 - rng.uniform(), 1.0 / a);
  const double d = a - 1.0 / 3, c = 1.0 / std::sqrt(9 * d);
  while (true) {
    double x, v;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}
}  // namespace

double beta(SplitMix64& rng, double a) {
  const double x = gamma(rng, a), y = gamma(rng, a);
  // Tiny a: both draws may underflow to 0; Beta(a, a) is then nearly all at 0 and 1.
  if (!(x + y > 0)) return rng.uniform() < 0.5 ? 0.0 : 1.0;
  return x / (x + y);
}

}  // namespace distill
