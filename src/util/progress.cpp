#include "distill/util/progress.h"

#include <spdlog/spdlog.h>

namespace distill {

Progress::Progress(std::string what, long total, bool enabled, double interval_s)
    : what_(std::move(what)),
      total_(total),
      enabled_(enabled),
      interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(long done) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  bool finished = done >= total_;
  if (!finished && std::chrono::duration<double>(now - last_print_).count() < interval_s_) return;
  last_print_ = now;
  double el = elapsed_s();
  double rate = el > 0 ? done / el : 0.0;
  double eta = rate > 0 ? (total_ - done) / rate : 0.0;
  spdlog::info("{}: {}/{} ({:.1f}%), {:.1f}/s, elapsed {:.1f}s, ETA {:.1f}s", what_, done, total_,
               total_ > 0 ? 100.0 * done / total_ : 100.0, rate, el, eta);
}

}  // namespace distill
