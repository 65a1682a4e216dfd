// The communicator for tensors of one device (Note [device collectives]): NCCL on a GPU, the host
// communicator itself on the CPU.
#pragma once
#include <c10/core/Device.h>

#include <memory>

#include "distill/comm/communicator.h"

namespace distill {

// For collectives on tensors of device `d`: an NCCL communicator over the ranks of `host` when `d`
// is a GPU (Note [device collectives]); null on the CPU (use `host`). Collective over `host`.
std::unique_ptr<Communicator> make_device_communicator(Communicator& host, const c10::Device& d, double timeout_s);

}  // namespace distill
