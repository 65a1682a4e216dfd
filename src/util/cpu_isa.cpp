#include "distill/util/cpu_isa.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define DISTILL_X86 1
#endif

namespace distill {

namespace {

#ifdef DISTILL_X86
std::uint64_t xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

std::string brand() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000004u) return "";
  char s[49] = {};
  for (unsigned leaf = 0; leaf < 3; ++leaf) {
    __get_cpuid(0x80000002u + leaf, &a, &b, &c, &d);
    const unsigned r[4] = {a, b, c, d};
    std::memcpy(s + 16 * leaf, r, 16);
  }
  std::string out(s);
  out.erase(0, out.find_first_not_of(' '));
  out.erase(out.find_last_not_of(' ') + 1);
  return out;
}

CpuIsa detect() {
  CpuIsa isa;
  isa.model = brand();
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return isa;  // no OSXSAVE: no xgetbv
  const std::uint64_t x = xcr0();
  const bool avx512_state = (x & 0xe6) == 0xe6;               // SSE, AVX, opmask, ZMM state
  const bool amx_state = (x & (3ull << 17)) == (3ull << 17);  // XTILECFG, XTILEDATA
  if (__get_cpuid_max(0, nullptr) < 7) return isa;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx512f = b & (1u << 16);
  const bool amx = (d & (1u << 22)) && (d & (1u << 24));  // amx_bf16, amx_tile
  const unsigned max_sub = a;
  bool bf16 = false;
  if (max_sub >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    bf16 = a & (1u << 5);
  }
  isa.avx512_bf16 = avx512f && avx512_state && bf16;
  isa.amx_bf16 = avx512f && avx512_state && amx_state && amx;
  return isa;
}
#else
CpuIsa detect() { return {}; }
#endif

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::toupper(ch); });
  return s;
}

}  // namespace

const char* CpuIsa::units() const { return amx_bf16 ? "AMX" : avx512_bf16 ? "AVX512-BF16" : "neither"; }

std::string CpuIsa::describe() const {
  std::string s = (model.empty() ? std::string("unknown CPU") : model) + ", bf16 units: " + units();
  if (amx_bf16 && avx512_bf16) s += " (and AVX512-BF16)";
  if (!cap.empty()) s += " (capped by " + cap + ")";
  return s;
}

CpuIsa apply_isa_cap(CpuIsa isa, const std::string& variable, const std::string& value) {
  const std::string v = upper(value);
  if (v.empty() || v == "ALL" || v == "DEFAULT") return isa;
  const bool keep_amx = v.find("AMX") != std::string::npos;
  const bool keep_bf16 = keep_amx || v == "AVX512_CORE_BF16" || v == "AVX512_CORE_FP16";
  const bool changed = (isa.amx_bf16 && !keep_amx) || (isa.avx512_bf16 && !keep_bf16);
  isa.amx_bf16 = isa.amx_bf16 && keep_amx;
  isa.avx512_bf16 = isa.avx512_bf16 && keep_bf16;
  if (changed) isa.cap = variable + "=" + value;
  return isa;
}

const CpuIsa& cpu_isa() {
  static const CpuIsa isa = [] {
    CpuIsa i = detect();
    for (const char* var : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"})
      if (const char* v = std::getenv(var)) return apply_isa_cap(i, var, v);
    return i;
  }();
  return isa;
}

}  // namespace distill
