// Thread-rank backend: the ranks of a group are threads of one process, so multi-rank code (the
// gradient reducer, the trainer) runs under a plain test binary, without mpirun.
//
// Note [thread ranks]: collectives match MPI's results and checks (communicator.h), with three
// promises of their own:
//  - reductions are deterministic: ranks are combined in rank order (0, 1, 2, ...) whatever the
//    thread timing, and kAverage scales the sum as the MPI backend does;
//  - a collective whose ranks disagree (operation, count, dtype, op or root) throws CommError on
//    every rank of the group instead of corrupting memory;
//  - no rank is left waiting: when a rank throws, or returns while others wait for it, or a
//    collective waits longer than the timeout, every pending and later collective of every group
//    made by run_thread_ranks (splits included) throws CommError.
// The threads share one process: LibTorch's intra-op pool and its default CPU generator
// (torch::manual_seed) are process-wide, so n ranks with k intra-op threads contend for the same
// k workers, and ranks that seed the default generator race. Tests call torch::set_num_threads(1)
// and take per-rank randomness from explicit generators or fixed formulas.
#pragma once
#include <functional>

#include "distill/comm/communicator.h"

namespace distill {

struct ThreadRankOptions {
  // Seconds one collective may wait for the other ranks before it fails on all of them.
  double timeout_s = 120;
};

// Runs body(comm) on `n` threads, thread r with the communicator of rank r of a group of n
// (local_size() = n: the threads share one node), and joins them. When bodies throw, rethrows the
// first exception after every thread has ended (Note [thread ranks]).
void run_thread_ranks(int n, const std::function<void(Communicator&)>& body, ThreadRankOptions o = {});

}  // namespace distill
