// AVX-512 (F/BW/VL/DQ) + VNNI kernels. Compiled with those flags; called only after
// isa_supported(Isa::Avx512).
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values and then warn about them.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/generic.h"
#include "kernels/tables.h"

namespace semline::cpu {
namespace {

struct V {
  using R = __m512;
  static constexpr int W = 16;
  static constexpr int kTileRows = 4, kTileCols = 4;
  static __mmask16 mask(int n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float a) { return _mm512_set1_ps(a); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, R v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
  static R load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static R load_f16_n(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static R bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static R load_bf16(const uint16_t* p) { return bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static R load_bf16_n(const uint16_t* p, int n) { return bf16(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static void store_f16(uint16_t* p, R v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store_f16_n(uint16_t* p, R v, int n) {
    _mm256_mask_storeu_epi16(p, mask(n), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static R load_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R abs(R a) { return _mm512_abs_ps(a); }
  static R round(R a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R ldexp(R a, R n) { return _mm512_scalef_ps(a, n); }
  static float hsum(R a) { return _mm512_reduce_add_ps(a); }
  static float hmax(R a) { return _mm512_reduce_max_ps(a); }
  static R exp(R x) { return generic::exp_approx<V>(x); }
  static int32_t store_i8(R v, int8_t* q) {
    __m512i i = _mm512_cvtps_epi32(v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(i));
    return _mm512_reduce_add_epi32(i);
  }
};

// Weight blocks, two at a time: one 512-bit register holds the 64 weights of blocks b and b + 1
// as unsigned bytes (the signed value plus an offset of 2^kShift), in the order of the
// activation's int8 values, so vpdpbusd multiplies them directly; lanes 0-7 of its result belong
// to block b, lanes 8-15 to block b + 1. The offset is taken back out with the activation
// block sums: sum w x = sum (w + o) x - o sum x.
struct Q8 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr int kShift = 7;
  static __m512i quants2(const char* b) {
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2))),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kBytes + 2)), 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  static __m256i quants1(const char* b) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};

struct Q4 {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr int kShift = 3;
  // Block layout: weight i < 16 in the low nibble of byte i, weight i + 16 in the high nibble.
  static __m512i quants2(const char* b) {
    __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)));
    __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kBytes + 2)));
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    v = _mm512_srlv_epi64(v, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
  }
  static __m256i quants1(const char* b) {
    __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
  }
};

inline float half(const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

template <class Q>
struct QTiles {
  static constexpr int kTileRows = 4, kTileCols = 4;

  template <int RW, int RX>
  static void tile(const char* w, size_t ws, const QRows& x, int64_t r0, int64_t k, float* y,
                   int64_t ys, bool accumulate) {
    const int64_t nb = k / 32;
    const __m512i pair = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i zero = _mm512_setzero_si512();
    const int8_t* xq[RX];
    const float* xd[RX];
    const int32_t* xs[RX];
    for (int r = 0; r < RX; ++r) {
      xq[r] = x.q + (r0 + r) * x.q_stride;
      xd[r] = x.d + (r0 + r) * x.b_stride;
      xs[r] = x.s + (r0 + r) * x.b_stride;
    }
    __m512 acc[RW][RX];
    for (int j = 0; j < RW; ++j)
      for (int r = 0; r < RX; ++r) acc[j][r] = _mm512_setzero_ps();

    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      __m512i xv[RX], corr[RX];
      __m512 xdv[RX];
      for (int r = 0; r < RX; ++r) {
        xv[r] = _mm512_loadu_si512(xq[r] + 32 * b);
        xdv[r] = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(xd[r] + b)))));
        __m512i s = _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(xs[r] + b)));
        s = _mm512_maskz_permutexvar_epi32(0x0101, pair, s);  // each block's sum in its first lane
        corr[r] = _mm512_sub_epi32(zero, _mm512_slli_epi32(s, Q::kShift));
      }
      for (int j = 0; j < RW; ++j) {
        const char* blk = w + j * ws + b * Q::kBytes;
        const __m512i wq = Q::quants2(blk);
        uint16_t h0, h1;
        std::memcpy(&h0, blk, 2);
        std::memcpy(&h1, blk + Q::kBytes, 2);
        const __m512 wd = _mm512_permutexvar_ps(
            pair, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(h0 | (uint32_t{h1} << 16)))));
        for (int r = 0; r < RX; ++r) {
          const __m512i p = _mm512_dpbusd_epi32(corr[r], wq, xv[r]);
          acc[j][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd, xdv[r]), acc[j][r]);
        }
      }
    }
    if (b < nb) {  // an odd last block, in the low half
      for (int j = 0; j < RW; ++j) {
        const char* blk = w + j * ws + b * Q::kBytes;
        const __m256i wq = Q::quants1(blk);
        const float dw = half(blk);
        for (int r = 0; r < RX; ++r) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[r] + 32 * b));
          const __m256i corr = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-(xs[r][b] << Q::kShift)));
          const __m256i p = _mm256_dpbusd_epi32(corr, wq, xv);
          const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xd[r][b]));
          acc[j][r] = _mm512_add_ps(acc[j][r], _mm512_zextps256_ps512(f));
        }
      }
    }
    for (int r = 0; r < RX; ++r)
      for (int j = 0; j < RW; ++j)
        y[r * ys + j] = (accumulate ? y[r * ys + j] : 0.0f) + _mm512_reduce_add_ps(acc[j][r]);
  }
};

constexpr Kernels make_table() {
  Kernels k = generic::common_table<V>(Isa::Avx512);
  k.gemm_q8_0 = &generic::gemm_quant<QTiles<Q8>>;
  k.gemm_q4_0 = &generic::gemm_quant<QTiles<Q4>>;
  return k;
}

constexpr Kernels kTable = make_table();

}  // namespace

const Kernels& kernels_avx512() { return kTable; }

}  // namespace semline::cpu
