// Instruction-set detection and the choice of kernel table. Compiled for the baseline target.
#include <cstring>
#include <string>

#if SEMLINE_CPU_X86
#include <cpuid.h>
#endif
#if SEMLINE_CPU_X86 && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <semline/error.h>

#include "kernels/tables.h"

namespace semline::cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Amx: return "amx";
  }
  return "?";
}

std::optional<Isa> isa_from_name(std::string_view name) {
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

#if SEMLINE_CPU_X86
// CPUID leaf 1, ECX: clang before 15 has no "f16c" for __builtin_cpu_supports.
static bool has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

// AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25), and the tile data state granted to
// this process: Linux hands it out only on request (arch_prctl ARCH_REQ_XCOMP_PERM for
// XTILEDATA), once per process, for every thread. Asked once.
static bool amx_usable() {
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return false;
#ifdef __linux__
    constexpr long kReqXcompPerm = 0x1023, kXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) == 0;
#else
    return false;
#endif
  }();
  return usable;
}
#endif

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#if SEMLINE_CPU_X86
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::Avx512:
      return isa_supported(Isa::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    case Isa::Amx: return isa_supported(Isa::Avx512) && amx_usable();
#else
    case Isa::Avx2:
    case Isa::Avx512:
    case Isa::Amx: return false;
#endif
  }
  return false;
}

const char* prefetch_name(Prefetch p) { return p == Prefetch::Hardware ? "hardware" : "software"; }

std::optional<Prefetch> prefetch_from_name(std::string_view name) {
  for (Prefetch p : {Prefetch::Software, Prefetch::Hardware})
    if (name == prefetch_name(p)) return p;
  return std::nullopt;
}

Prefetch default_prefetch() {
#if SEMLINE_CPU_X86
  // CPUID leaf 0: the vendor string in EBX, EDX, ECX.
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    if (std::string_view(vendor) == "AuthenticAMD") return Prefetch::Hardware;
  }
#endif
  return Prefetch::Software;
}

Isa best_isa() {
  if (isa_supported(Isa::Amx)) return Isa::Amx;
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

const Kernels& kernels_for(Isa isa) {
  if (!isa_supported(isa))
    throw Error(std::string("cpu kernels: this CPU cannot run the '") + isa_name(isa) +
                "' kernels; best available: '" + isa_name(best_isa()) + "'");
  switch (isa) {
#if SEMLINE_CPU_X86
    case Isa::Amx: return kernels_amx();
    case Isa::Avx512: return kernels_avx512();
    case Isa::Avx2: return kernels_avx2();
#endif
    default: return kernels_scalar();
  }
}

}  // namespace semline::cpu
