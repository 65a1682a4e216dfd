#include "distill/model/device.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "distill/util/cpu_isa.h"
#include "distill/util/error.h"

// The per-device autocast API replaced the CUDA-only one in LibTorch 2.4.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define DISTILL_AUTOCAST_PER_DEVICE 1
#endif

namespace distill {

bool cuda_available() { return torch::cuda::is_available(); }

c10::Device resolve_device(const std::string& spec, int local_rank, const std::string& what) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec == "auto" && !cuda_available()) return c10::Device(c10::kCPU);
  if (spec == "auto" || spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    DISTILL_CHECK(cuda_available(), ConfigError, what, ": ", spec, " asks for a GPU, but ",
                  at::hasCUDA() ? "no GPU is visible" : "this LibTorch was built without CUDA", "; use cpu");
    const int n = static_cast<int>(torch::cuda::device_count());
    int index = local_rank % n;
    if (spec.rfind("cuda:", 0) == 0) {
      try {
        index = std::stoi(spec.substr(5));
      } catch (const std::exception&) {
        throw ConfigError(str(what, ": '", spec, "' is not cuda:N"));
      }
      DISTILL_CHECK(index >= 0 && index < n, ConfigError, what, ": ", spec, " but ", n, " GPUs are visible");
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw ConfigError(str(what, " = '", spec, "', expected auto, cpu, cuda or cuda:N"));
}

c10::ScalarType parse_precision(const std::string& v, const std::string& what) {
  if (v == "fp32") return c10::ScalarType::Float;
  if (v == "bf16") return c10::ScalarType::BFloat16;
  if (v == "fp16") return c10::ScalarType::Half;
  throw ConfigError(str(what, " = '", v, "', expected fp32, bf16 or fp16"));
}

const char* precision_name(c10::ScalarType t) {
  return t == c10::ScalarType::BFloat16 ? "bf16" : t == c10::ScalarType::Half ? "fp16" : "fp32";
}

std::string cpu_bf16_speed(const std::string& key) {
  auto rate = [](c10::ScalarType t) {
    const std::int64_t n = 512;
    auto a = torch::randn({n, n}).to(t), b = torch::randn({n, n}).to(t);
    torch::matmul(a, b);  // warm-up
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      torch::matmul(a, b);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return 2.0 * n * n * n / best / 1e9;
  };
  double bf16 = 0;
  try {
    bf16 = rate(c10::ScalarType::BFloat16);
  } catch (const c10::Error& e) {
    throw ConfigError(str(key, ": bf16 matrix products cannot run on this CPU (", cpu_isa().describe(), ": ",
                          e.what_without_backtrace(), "); use fp32 or auto"));
  } catch (const std::exception& e) {  // oneDNN's own errors
    throw ConfigError(str(key, ": bf16 matrix products cannot run on this CPU (", cpu_isa().describe(), ": ", e.what(),
                          "); use fp32 or auto"));
  }
  const double fp32 = rate(c10::ScalarType::Float);
  char buf[160];
  std::snprintf(buf, sizeof(buf), "bf16 matrix products run at %.0f GFLOP/s here, fp32 ones at %.0f (%.2fx)", bf16,
                fp32, bf16 / fp32);
  return buf;
}

void synchronize(const c10::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

namespace {
// The autocast state of one device type.
struct CastState {
  bool enabled;
  c10::ScalarType dtype;
};

CastState get_cast(c10::DeviceType t) {
#ifdef DISTILL_AUTOCAST_PER_DEVICE
  return {at::autocast::is_autocast_enabled(t), at::autocast::get_autocast_dtype(t)};
#else
  if (t == c10::kCUDA) return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

void set_cast(c10::DeviceType t, bool enabled, c10::ScalarType dtype) {
#ifdef DISTILL_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_dtype(t, dtype);
  at::autocast::set_autocast_enabled(t, enabled);
#else
  if (t == c10::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}
}  // namespace

Autocast::Autocast(const c10::Device& d, c10::ScalarType dtype) : on_(d.is_cuda() || d.is_cpu()), type_(d.type()) {
  if (!on_) return;
  const auto prev = get_cast(type_);
  prev_enabled_ = prev.enabled;
  prev_dtype_ = prev.dtype;
  // float32 turns autocast off inside the guard (an fp32 teacher within a bf16 student's step).
  const bool enable = dtype != c10::ScalarType::Float;
  set_cast(type_, enable, enable ? dtype : prev_dtype_);
  at::autocast::increment_nesting();
}

Autocast::~Autocast() {
  if (!on_) return;
  // As torch.autocast's exit: the cast weights cached for this region are dropped with it.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_cast(type_, prev_enabled_, prev_dtype_);
}

std::string generator_state(const c10::Device& d) {
  auto gen = at::globalContext().defaultGenerator(d);
  auto s = gen.get_state();
  return std::string(static_cast<const char*>(s.data_ptr()), static_cast<std::size_t>(s.numel()));
}

void set_generator_state(const c10::Device& d, const std::string& bytes) {
  auto t = torch::empty({static_cast<std::int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  auto gen = at::globalContext().defaultGenerator(d);
  gen.set_state(t);
}

}  // namespace distill
