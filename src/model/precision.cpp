#include "distill/model/precision.h"

#include "distill/util/error.h"

namespace distill {

const char* name(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
    case Precision::kAuto:
      return "auto";
  }
  return "?";
}

c10::ScalarType scalar_type(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return c10::ScalarType::BFloat16;
    case Precision::kFp16:
      return c10::ScalarType::Half;
    case Precision::kAuto:
      throw std::logic_error("scalar_type(auto): resolve the precision first");
    case Precision::kFp32:
      break;
  }
  return c10::ScalarType::Float;
}

PrecisionChoice resolve_precision(Precision requested, bool cuda, const CpuIsa& isa, const std::string& key) {
  PrecisionChoice c;
  if (cuda) {
    c.precision = requested == Precision::kAuto ? Precision::kBf16 : requested;
    return c;
  }
  switch (requested) {
    case Precision::kAuto:
      c.precision = isa.native_bf16() ? Precision::kBf16 : Precision::kFp32;
      return c;
    case Precision::kFp16:
      throw ConfigError(str(key, ": fp16 needs a GPU; on the CPU use bf16, fp32 or auto"));
    case Precision::kBf16:
      c.precision = Precision::kBf16;
      if (!isa.native_bf16())
        c.warning = str(key, ": bf16 on a CPU without native bf16 units (", isa.describe(),
                        "): its matrix products are emulated, slower than fp32; auto would choose fp32");
      return c;
    case Precision::kFp32:
      break;
  }
  return c;
}

}  // namespace distill
