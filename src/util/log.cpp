#include "distill/util/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

namespace distill {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

void set_log_rank(int rank, int world, const std::string& host) {
  // Callable again (e.g. to add a rank's group): the previous logger is replaced.
  spdlog::drop("distill-" + std::to_string(rank));
  auto logger = spdlog::stderr_logger_mt("distill-" + std::to_string(rank));
  logger->set_pattern("[%H:%M:%S] [rank " + std::to_string(rank) + "/" + std::to_string(world) + " " + host +
                      "] %^%l%$: %v");
  spdlog::set_default_logger(logger);
}

}  // namespace distill
