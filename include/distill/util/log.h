// Rank-prefixed logging on stderr. set_log_rank() after the communicator exists (again to relabel).
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace distill {

// Installs a logger whose lines start with "[rank R/W host]". Not thread safe; call at startup.
void set_log_rank(int rank, int world, const std::string& host);

// The host name of this process.
std::string host_name();

}  // namespace distill
