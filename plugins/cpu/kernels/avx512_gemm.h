// The AVX-512 linear maps (and scores over a Q8_0 cache) that are not generic: defined in
// avx512_quant.cpp and avx512_float.cpp, gathered into the table by avx512.cpp.
#pragma once

#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/repack.h"

namespace semline::cpu::avx512 {

// Blocks per k-chunk of the many-rows path of gemm_q8_0 and gemm_q4_0: a chunk of a tile (17 KiB
// of Q8_0) stays in L1 while every group of activation rows meets it; the partial sums go through
// y. The AMX kernels sum in the same order, chunk by chunk, so the two give identical floats.
inline constexpr int64_t kChunkBlocks = 32;

// The lanes of repacked tile t (its rows 16 t .. 16 t + 15) inside the range [a.j0, a.j1).
inline __mmask16 tile_lanes(const GemmArgs& a, int64_t t) {
  const int64_t lo = a.j0 - t * kRepackRows, hi = a.j1 - t * kRepackRows;
  const uint32_t below_hi = hi >= 16 ? 0xffffu : (1u << hi) - 1, below_lo = lo <= 0 ? 0u : (1u << lo) - 1;
  return static_cast<__mmask16>(below_hi & ~below_lo);
}

void gemm_q8_0(const GemmArgs& a);
void gemm_q4_0(const GemmArgs& a);
void gemm_f32(const GemmArgs& a);
void gemm_f16(const GemmArgs& a);
void gemm_bf16(const GemmArgs& a);
void qk_row_q8_0(const float* q, const RowRuns& k, int64_t hd, float* s);

}  // namespace semline::cpu::avx512
