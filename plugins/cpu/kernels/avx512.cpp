// The AVX-512 (F/BW/VL/DQ) + VNNI kernel table. This file and the other avx512_*.cpp are
// compiled with those flags; nothing in them runs before isa_supported(Isa::Avx512) held.
#include "kernels/avx512_gemm.h"
#include "kernels/avx512_vec.h"
#include "kernels/tables.h"

namespace semline::cpu {
namespace {

constexpr Kernels make_table() {
  Kernels k = generic::common_table<V>(Isa::Avx512);
  k.gemm_f32 = &avx512::gemm_f32;
  k.gemm_f16 = &avx512::gemm_f16;
  k.gemm_bf16 = &avx512::gemm_bf16;
  k.gemm_q8_0 = &avx512::gemm_q8_0;
  k.gemm_q4_0 = &avx512::gemm_q4_0;
  k.qk_row_q8_0 = &avx512::qk_row_q8_0;
  k.repacked_quant = true;
  return k;
}

constexpr Kernels kTable = make_table();

}  // namespace

const Kernels& kernels_avx512() { return kTable; }

}  // namespace semline::cpu
