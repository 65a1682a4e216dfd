#include "distill/kd/layer_map.h"

#include <algorithm>
#include <set>

#include "distill/util/error.h"
#include "distill/util/text.h"

namespace distill {

namespace {

long parse_index(const std::string& s, const std::string& name, const std::string& spec) {
  std::size_t pos = 0;
  long v = -1;
  try {
    v = std::stol(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  DISTILL_CHECK(pos == s.size() && !s.empty(), ConfigError, name, " = '", spec, "': '", s, "' is not a layer index");
  return v;
}

// Comma-separated items with surrounding spaces removed.
std::vector<std::string> items(const std::string& s) {
  auto out = split(s, ',');
  for (auto& part : out) {
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
  }
  return out;
}

}  // namespace

LayerMap parse_layer_map(const std::string& spec, long M, long N, const std::string& kind, const std::string& name) {
  DISTILL_CHECK(kind == "hidden" || kind == "attention", ConfigError, "layer map kind must be hidden or attention");
  LayerMap m;
  if (spec.empty() || spec == "none") return m;
  if (spec == "uniform") {
    DISTILL_CHECK(M > 0 && N % M == 0, ConfigError, name, " = uniform needs the teacher's ", N,
                  " layers to be a multiple of the student's ", M, "; use skip:... or explicit pairs");
    for (long s = 1; s <= M; ++s) m.pairs.emplace_back(s, s * (N / M));
  } else if (spec == "last") {
    DISTILL_CHECK(M <= N, ConfigError, name, " = last: the student has ", M, " layers, the teacher only ", N);
    for (long s = 1; s <= M; ++s) m.pairs.emplace_back(s, N - M + s);
  } else if (spec.rfind("skip:", 0) == 0) {
    auto listed = items(spec.substr(5));
    DISTILL_CHECK(static_cast<long>(listed.size()) == M, ConfigError, name, " = '", spec, "' lists ", listed.size(),
                  " teacher layers for a student of ", M, " layers (one per student layer)");
    for (long s = 1; s <= M; ++s) m.pairs.emplace_back(s, parse_index(listed[s - 1], name, spec));
  } else {
    for (const auto& item : items(spec)) {
      auto colon = item.find(':');
      DISTILL_CHECK(colon != std::string::npos, ConfigError, name, " = '", spec, "': '", item,
                    "' is neither uniform, last, skip:... nor a student:teacher pair");
      m.pairs.emplace_back(parse_index(item.substr(0, colon), name, spec),
                           parse_index(item.substr(colon + 1), name, spec));
    }
  }
  const long lo = kind == "hidden" ? 0 : 1;
  std::set<long> seen;
  for (const auto& [s, t] : m.pairs) {
    DISTILL_CHECK(s >= lo && s <= M, ConfigError, name, ": pair ", s, ":", t, " names student ", kind, " ", s,
                  ", valid are ", lo, "..", M, kind == "hidden" ? " (0 = embeddings)" : "");
    DISTILL_CHECK(t >= lo && t <= N, ConfigError, name, ": pair ", s, ":", t, " names teacher ", kind, " ", t,
                  ", valid are ", lo, "..", N, kind == "hidden" ? " (0 = embeddings)" : "");
    DISTILL_CHECK(seen.insert(s).second, ConfigError, name, ": student ", kind, " ", s, " appears twice");
  }
  std::sort(m.pairs.begin(), m.pairs.end());
  return m;
}

std::vector<long> teacher_layers_of(const LayerMap& m) {
  std::set<long> t;
  for (const auto& p : m.pairs) t.insert(p.second);
  return {t.begin(), t.end()};
}

}  // namespace distill
