// What this CPU offers for bf16 matrix products (Note [cpu bf16]).
//
// Note [cpu bf16]: on x86 CPUs with AMX (amx_bf16 + amx_tile) or AVX512-BF16, oneDNN runs bf16
// matrix products natively, several times faster than float32; elsewhere bf16 is emulated and
// slower than float32. train.precision / teacher.precision `auto` choose bf16 only where it is
// native (model/precision.h). Detection reads cpuid and the state the OS enables (xgetbv), and
// honours ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA, which cap what oneDNN may use.
#pragma once
#include <string>

namespace distill {

struct CpuIsa {
  std::string model;         // the CPU's brand string ("" where unknown)
  bool avx512_bf16 = false;  // AVX512-BF16 usable
  bool amx_bf16 = false;     // AMX tiles with bf16 usable
  std::string cap;           // "ONEDNN_MAX_CPU_ISA=AVX2" when such a cap turned units off

  bool native_bf16() const { return avx512_bf16 || amx_bf16; }
  // "AMX", "AVX512-BF16" or "neither": the bf16 units in use.
  const char* units() const;
  // One line for logs and benchmarks: model, units, and the cap if any.
  std::string describe() const;
};

// This process's CPU (detected once).
const CpuIsa& cpu_isa();
// `isa` as oneDNN would use it under the cap `value` of ONEDNN_MAX_CPU_ISA (its spellings, any
// case: ALL, DEFAULT, AVX512_CORE_AMX, AVX512_CORE_BF16, AVX512_CORE, AVX2, ...).
CpuIsa apply_isa_cap(CpuIsa isa, const std::string& variable, const std::string& value);

}  // namespace distill
