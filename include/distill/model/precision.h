// The precision a model runs in (Note [devices], Note [cpu bf16]): float32, or autocast to bf16
// (GPUs, and CPUs) or fp16 (GPUs), with float32 weights, gradients and optimizer state.
#pragma once
#include <c10/core/ScalarType.h>

#include <string>

#include "distill/util/cpu_isa.h"

namespace distill {

enum class Precision { kFp32, kBf16, kFp16, kAuto };

// "fp32", "bf16", "fp16", "auto": the spelling in configs and logs.
const char* name(Precision p);
// Float, BFloat16, Half; kAuto must be resolved first (resolve_precision).
c10::ScalarType scalar_type(Precision p);

// A requested precision resolved for one device.
struct PrecisionChoice {
  Precision precision = Precision::kFp32;  // never kAuto
  std::string warning;                     // non-empty: log it (explicit bf16 without native units)
};

// The policy, a pure function of its arguments: `auto` is bf16 on a GPU or a CPU with native bf16
// (AMX or AVX512-BF16) and fp32 elsewhere; fp32 and bf16 are taken as asked, bf16 on a CPU without
// native units with a warning; fp16 needs a GPU (ConfigError naming `key` otherwise).
PrecisionChoice resolve_precision(Precision requested, bool cuda, const CpuIsa& isa, const std::string& key);

}  // namespace distill
