// The AVX-512 linear maps that are not generic: defined in avx512_quant.cpp and
// avx512_float.cpp, gathered into the table by avx512.cpp.
#pragma once

#include "kernels/kernels.h"

namespace semline::cpu::avx512 {

void gemm_q8_0(const GemmArgs& a);
void gemm_q4_0(const GemmArgs& a);
void gemm_f32(const GemmArgs& a);
void gemm_f16(const GemmArgs& a);
void gemm_bf16(const GemmArgs& a);

}  // namespace semline::cpu::avx512
