// Devices and precision.
//
// Note [devices]: each rank takes one device: `cpu`, `cuda` (the GPU of its local rank, i.e. its
// index among the group's ranks on the node, modulo the GPUs visible), `cuda:N`, or `auto` (CUDA
// when this build and host have a GPU, else the CPU). Reduced precision is autocast: weights,
// gradients and optimizer state stay float32 (the master copy) and matrix products run in bf16 or
// fp16 (bf16 only on the CPU: Note [cpu bf16]). Checkpoints, stores and host-side collectives always hold float32
// host tensors, so a run can move between devices (a resume still needs the same config hash).
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace distill {

// `what` names the config key in errors.
c10::Device resolve_device(const std::string& spec, int local_rank, const std::string& what);
// fp32 | bf16 | fp16 -> Float | BFloat16 | Half.
c10::ScalarType parse_precision(const std::string& v, const std::string& what);
const char* precision_name(c10::ScalarType t);
// True when this LibTorch was built with CUDA and a GPU is visible.
bool cuda_available();
// Waits for the device's queued work (a no-op on the CPU); for timing.
void synchronize(const c10::Device& d);
// "bf16 matrix products run at A GFLOP/s here, fp32 ones at B (A/B x)": measured now on this CPU
// thread with 512 x 512 products (about 0.1 s); for the warning about bf16 without native units.
// Throws ConfigError naming `key` when bf16 products cannot run at all (e.g. oneDNN capped by
// ONEDNN_MAX_CPU_ISA below AVX-512 on a CPU that LibTorch sends to oneDNN).
std::string cpu_bf16_speed(const std::string& key);

// Autocast to `dtype` on the device's type (CUDA: bf16 or fp16; CPU: bf16) for the guard's
// lifetime (float32: autocast off, also inside an enclosing guard). Guards nest.
class Autocast {
 public:
  Autocast(const c10::Device& d, c10::ScalarType dtype);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_ = false, prev_enabled_ = false;
  c10::DeviceType type_;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Float;
};

// The generator state of the device's default generator (CPU or CUDA), as bytes.
std::string generator_state(const c10::Device& d);
void set_generator_state(const c10::Device& d, const std::string& bytes);

}  // namespace distill
