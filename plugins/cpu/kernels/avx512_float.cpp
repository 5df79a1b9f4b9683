// AVX-512 linear maps over F32, F16 and BF16 weights with many activation rows (prefill); few
// rows take the generic register tiles.
#include "kernels/avx512_gemm.h"
#include "kernels/avx512_vec.h"

namespace semline::cpu {
namespace {

// Float weights, many activation rows: the same idea with floats. 16 weight rows are repacked
// so that a register holds one column (the 16 rows' weights at one k), and each activation row
// meets it with a single FMA on its value at that k broadcast: no horizontal sums, and the
// activation is read 4 bytes per 16 multiply-adds instead of streamed alongside the weights.

constexpr int64_t kPackCols = 256;  // k values per chunk: the packed columns stay in L1

struct PackedF {
  alignas(64) float w[kPackCols][16];  // [k][row l]
};

struct F32Cols {
  // Columns k0 .. k0 + n of 16 rows (masked) at byte offsets `offsets` from w.
  static void pack(const char* w, __m512i offsets, __mmask16 rows, int64_t k0, int64_t n, PackedF& p) {
    for (int64_t i = 0; i < n; ++i)
      _mm512_store_ps(p.w[i], _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rows, offsets, w + (k0 + i) * 4, 1));
  }
};

// Half-precision rows: one 32-bit gather brings two neighbouring columns.
template <bool BF16>
struct Half16Cols {
  static __m512 low(__m512i v) {
    return BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)) : _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
  }
  static __m512 high(__m512i v) {
    return BF16 ? _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u))))
                : _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)));
  }
  static void pack(const char* w, __m512i offsets, __mmask16 rows, int64_t k0, int64_t n, PackedF& p) {
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
      const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, offsets, w + (k0 + i) * 2, 1);
      _mm512_store_ps(p.w[i], low(v));
      _mm512_store_ps(p.w[i + 1], high(v));
    }
    if (i < n) {  // a last odd column: 16 bits per row, never read past them
      alignas(64) int32_t off[16];
      alignas(64) uint32_t v[16] = {};
      _mm512_store_si512(off, offsets);
      for (int l = 0; l < 16; ++l)
        if (rows >> l & 1) {
          uint16_t h;
          std::memcpy(&h, w + off[l] + (k0 + i) * 2, 2);
          v[l] = h;
        }
      _mm512_store_ps(p.w[i], low(_mm512_load_si512(v)));
    }
  }
};

template <int RX>
void packed_float_tile(const PackedF& p, int64_t n, const float* x, int64_t xs, float* y, int64_t ys,
                       __mmask16 rows, bool overwrite) {
  __m512 acc[RX];
  for (int r = 0; r < RX; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; ++i) {
    const __m512 col = _mm512_load_ps(p.w[i]);
    for (int r = 0; r < RX; ++r) acc[r] = _mm512_fmadd_ps(col, _mm512_set1_ps(x[r * xs + i]), acc[r]);
  }
  for (int r = 0; r < RX; ++r) {
    float* yr = y + r * ys;
    const __m512 v = overwrite ? acc[r] : _mm512_add_ps(_mm512_maskz_loadu_ps(rows, yr), acc[r]);
    _mm512_mask_storeu_ps(yr, rows, v);
  }
}

// Rows below which the generic register tiles do the map: they stream each weight row once
// while its activation rows stay in cache. Under Prefetch::Hardware (AMD EPYC) the packing's
// gathers, 16 weight rows side by side, compete with the hardware prefetcher and cost more than
// they save below 64 rows (llama-134m F32, 2 threads: 8 rows 2.2x, 32 rows 1.5x, 56 rows 1.3x
// faster on the tiles; 64 rows about even).
constexpr int64_t kPackMinRowsStreamed = 64;

template <class C, class L>
void gemm_float(const GemmArgs& a) {
  if (a.m < (a.prefetch == Prefetch::Hardware ? kPackMinRowsStreamed : kPackMinRows)) {
    generic::gemm_float<V, L>(a);
    return;
  }
  PackedF p;
  const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int32_t>(a.w_stride)));
  const char* w = static_cast<const char*>(a.w);
  for (int64_t k0 = 0; k0 < a.k; k0 += kPackCols) {
    const int64_t n = a.k - k0 < kPackCols ? a.k - k0 : kPackCols;
    const bool overwrite = k0 == 0 && !a.accumulate;
    for (int64_t j = a.j0; j < a.j1; j += 16) {
      const int64_t rows = a.j1 - j < 16 ? a.j1 - j : 16;
      const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
      C::pack(w + j * a.w_stride, offsets, mask, k0, n, p);
      const float* x = a.x + k0;
      float* y = a.y + j;
      int64_t r = 0;
      for (; r + 8 <= a.m; r += 8)
        packed_float_tile<8>(p, n, x + r * a.x_stride, a.x_stride, y + r * a.y_stride, a.y_stride, mask, overwrite);
      const float* xr = x + r * a.x_stride;
      float* yr = y + r * a.y_stride;
      switch (a.m - r) {
        case 7: packed_float_tile<7>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        case 6: packed_float_tile<6>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        case 5: packed_float_tile<5>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        case 4: packed_float_tile<4>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        case 3: packed_float_tile<3>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        case 2: packed_float_tile<2>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        case 1: packed_float_tile<1>(p, n, xr, a.x_stride, yr, a.y_stride, mask, overwrite); break;
        default: break;
      }
    }
  }
}

}  // namespace

void avx512::gemm_f32(const GemmArgs& a) { gemm_float<F32Cols, generic::LoadF32<V>>(a); }
void avx512::gemm_f16(const GemmArgs& a) { gemm_float<Half16Cols<false>, generic::LoadF16<V>>(a); }
void avx512::gemm_bf16(const GemmArgs& a) { gemm_float<Half16Cols<true>, generic::LoadBF16<V>>(a); }

}  // namespace semline::cpu
