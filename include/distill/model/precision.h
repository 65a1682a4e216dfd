// The precision a model runs in (Note [devices]): float32, or autocast to bf16 or fp16 on GPUs.
#pragma once
#include <c10/core/ScalarType.h>

namespace distill {

enum class Precision { kFp32, kBf16, kFp16 };

// "fp32", "bf16", "fp16": the spelling in configs and logs.
const char* name(Precision p);
// Float, BFloat16, Half.
c10::ScalarType scalar_type(Precision p);

}  // namespace distill
