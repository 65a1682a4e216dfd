// NCCL communicator behind the Communicator interface (built with DISTILL_WITH_NCCL).
//
// Note [device collectives]: buffers in GPU memory go over NCCL, buffers in host memory over the
// host communicator the NCCL one was made from (MPI), so control-plane collectives (strings, flags,
// metrics) keep working. A device collective is stream-ordered: it runs after the work already
// queued on the caller's current CUDA stream and before the work queued after it; allreduce()
// returns without waiting for the GPU. iallreduce() runs on a stream of the communicator's own,
// ordered after the caller's stream by an event, and its wait() makes the caller's current stream
// wait for it (again without blocking the host), so reductions overlap compute.
//
// Every NCCL operation is watched (comm/watchdog.h): an asynchronous NCCL error, or an operation
// that has not completed after `timeout_s`, aborts the NCCL communicator and ends the job with
// a message naming the operation, the rank and the host.
#pragma once
#include <functional>
#include <memory>

#include "distill/comm/communicator.h"

namespace distill {

struct NcclOptions {
  int device = 0;          // the CUDA device of this rank
  double timeout_s = 600;  // watchdog: longest time one collective may take
  double poll_s = 0.1;     // watchdog poll interval
  // The caller's current CUDA stream (a cudaStream_t) for this device; null = the legacy default
  // stream. LibTorch builds pass c10::cuda::getCurrentCUDAStream().
  std::function<void*()> current_stream;
  // Called instead of ending the process when the watchdog fires (tests).
  std::function<void(const std::string&)> on_fail;
};

// Collective over `host`: group rank 0 makes the NCCL unique id and broadcasts it over `host`.
// `host` must outlive the result. Throws CommError naming the call, rank and host on failure.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, const NcclOptions& o);

// The NCCL library's version (e.g. 22809), and the number of CUDA devices this process sees
// (0 when there is no driver or GPU).
int nccl_version();
int cuda_device_count();

}  // namespace distill
