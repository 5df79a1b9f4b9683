// The per-instruction-set kernel tables, each defined in its own translation unit.
#pragma once

#include "kernels/kernels.h"

namespace semline::cpu {

const Kernels& kernels_scalar();
#if SEMLINE_CPU_X86
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
const Kernels& kernels_amx();
#endif

}  // namespace semline::cpu
