#include "distill/app/faults.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace distill {

std::function<void(int, std::int64_t)> fault_after_checkpoint() {
  const char* v = std::getenv("DISTILL_FAULT_KILL_AT_STEP");
  if (!v) return {};
  const long long at = std::atoll(v);
  return [at](int rank, std::int64_t step) {
    if (rank == 0 && step == at) std::raise(SIGKILL);
  };
}

PrecomputeHooks fault_precompute_hooks() {
  const char* kill = std::getenv("DISTILL_FAULT_KILL_AFTER_SHARDS");
  const char* delay = std::getenv("DISTILL_FAULT_TEACHER_DELAY_MS");
  PrecomputeHooks h;
  if (!kill && !delay) return h;
  const long long kill_after = kill ? std::atoll(kill) : -1;
  const long delay_ms = delay ? std::atol(delay) : 0;
  h.before_shard = [kill_after, delay_ms](int rank, std::int64_t committed, const std::string& shard_path) {
    if (rank == 0 && committed == kill_after) {
      std::ofstream(shard_path + ".partial-" + std::to_string(rank), std::ios::binary) << "partial shard";
      std::raise(SIGKILL);
    }
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  };
  return h;
}

}  // namespace distill
