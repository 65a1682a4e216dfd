#include "distill/data/split_rows.h"

#include <cmath>

#include "distill/util/error.h"

namespace distill {

std::vector<int> split_parts(std::int64_t n, const PrepareOptions& o) {
  const auto n_dev = static_cast<std::int64_t>(std::llround(n * o.dev_fraction));
  const auto n_test = static_cast<std::int64_t>(std::llround(n * o.test_fraction));
  const auto order = epoch_order(n, o.seed, 0);
  std::vector<int> part(n);
  for (std::int64_t k = 0; k < n; ++k) part[order[k]] = k < n_dev ? 1 : k < n_dev + n_test ? 2 : 0;
  return part;
}

void check_fractions(const PrepareOptions& o) {
  DISTILL_CHECK(o.dev_fraction >= 0 && o.test_fraction >= 0 && o.dev_fraction + o.test_fraction < 1, ConfigError,
                "dev and test fractions must be >= 0 and leave room for train, got ", o.dev_fraction, " and ",
                o.test_fraction);
}

}  // namespace distill
