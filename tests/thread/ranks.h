// Shared by the thread-rank tests: ranks as threads of this process (comm/thread.h).
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "distill/comm/thread.h"

namespace distill::test {

// run_thread_ranks with one intra-op thread: the ranks share LibTorch's pool (Note [thread ranks]).
inline void run_ranks(int n, const std::function<void(Communicator&)>& body, ThreadRankOptions o = {}) {
  torch::set_num_threads(1);
  run_thread_ranks(n, body, o);
}

// A fixed tensor of `shape` with values sin(0.37 k + phase) in row-major order k: data that
// differs by phase (rank) without the process-wide random generator.
inline torch::Tensor wave(torch::IntArrayRef shape, double phase) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return torch::sin(torch::arange(n, torch::kFloat64) * 0.37 + phase).to(torch::kFloat32).reshape(shape);
}

}  // namespace distill::test
