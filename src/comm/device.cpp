#include "distill/comm/device.h"

#include "distill/util/error.h"

#ifdef DISTILL_WITH_CUDA
#include <c10/core/impl/VirtualGuardImpl.h>

#include "distill/comm/nccl.h"
#endif

namespace distill {

std::unique_ptr<Communicator> make_device_communicator(Communicator& host, const c10::Device& d, double timeout_s) {
  if (!d.is_cuda()) return nullptr;
#ifdef DISTILL_WITH_CUDA
  NcclOptions o;
  o.device = d.index();
  o.timeout_s = timeout_s;
  const auto index = d.index();
  // The current CUDA stream through c10's device-generic interface (LibTorch 2.1 and later).
  o.current_stream = [index]() -> void* {
    return c10::impl::VirtualGuardImpl(c10::kCUDA).getStream(c10::Device(c10::kCUDA, index)).native_handle();
  };
  return make_nccl_communicator(host, o);
#else
  throw ConfigError("this distill was built without CUDA; rebuild against a CUDA LibTorch");
#endif
}

}  // namespace distill
