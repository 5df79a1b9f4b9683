// AVX2 + FMA + F16C kernels. Compiled with those flags; called only after
// isa_supported(Isa::Avx2).
// __m256 as VecShape's template argument loses its may_alias attribute; the kernels only move it
// through intrinsics, never through pointers to it.
#pragma GCC diagnostic ignored "-Wignored-attributes"
#include <immintrin.h>

#include "kernels/generic.h"
#include "kernels/tables.h"

namespace semline::cpu {
namespace {

struct V : generic::VecShape<__m256, 8, 4, 2, 16> {
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float a) { return _mm256_set1_ps(a); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, R v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
  static __m128i load8(const uint16_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static __m128i load8_n(const uint16_t* p, int n) {
    alignas(16) uint16_t t[8] = {};
    std::memcpy(t, p, static_cast<size_t>(n) * 2);
    return _mm_load_si128(reinterpret_cast<const __m128i*>(t));
  }
  static R bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static R load_f16(const uint16_t* p) { return _mm256_cvtph_ps(load8(p)); }
  static R load_f16_n(const uint16_t* p, int n) { return _mm256_cvtph_ps(load8_n(p, n)); }
  static R load_bf16(const uint16_t* p) { return bf16(load8(p)); }
  static R load_bf16_n(const uint16_t* p, int n) { return bf16(load8_n(p, n)); }
  static void store_f16(uint16_t* p, R v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store_f16_n(uint16_t* p, R v, int n) {
    alignas(16) uint16_t t[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    std::memcpy(p, t, static_cast<size_t>(n) * 2);
  }
  static R load_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  SEMLINE_X86_ARITHMETIC(_mm256)
  static R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static R round(R a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127] (exp_approx clamps its input to keep n there).
  static R ldexp(R a, R n) {
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(a, _mm256_castsi256_ps(e));
  }
  static float hsum(R a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // out[i] = the sum of the lanes of the i-th argument, one shuffle tree for all four.
  static void hsum4(R a, R b, R c, R d, float* out) {
    const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const __m256 abcd = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(ab), _mm256_castps_pd(cd))),
                                      _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(ab), _mm256_castps_pd(cd))));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
  static float hmax(R a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static R exp(R x) { return generic::exp_approx<V>(x); }
  static int32_t store_i8(R v, int8_t* q) {
    __m256i i = _mm256_cvtps_epi32(v);
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q), _mm_packs_epi16(w, w));
    __m128i s = _mm_madd_epi16(w, _mm_set1_epi16(1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
  }
};

inline float half(const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// One block (32 weights) per 256-bit register, multiplied with vpmaddubsw, which takes one
// unsigned operand: Q8_0 moves the weight's sign onto the activation, Q4_0 uses its nibbles as
// they are (weight + 8) and takes 8 * (block sum of x) back out.
struct Q8 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  struct Prepared {
    __m256i mag, sign;
  };
  static Prepared prepare(const char* b) {
    __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
    return {_mm256_sign_epi8(q, q), q};
  }
  static __m256i dot(const Prepared& w, __m256i x, int32_t) {
    __m256i p = _mm256_maddubs_epi16(w.mag, _mm256_sign_epi8(x, w.sign));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
};

struct Q4 {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  struct Prepared {
    __m256i nib;
  };
  static Prepared prepare(const char* b) {
    __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return {_mm256_and_si256(v, _mm256_set1_epi8(0x0f))};
  }
  static __m256i dot(const Prepared& w, __m256i x, int32_t xsum) {
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(w.nib, x), _mm256_set1_epi16(1));
    return _mm256_add_epi32(p, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-8 * xsum)));
  }
};

template <class Q>
struct QTiles {
  static constexpr int kTileRows = 4, kTileCols = 2, kMatvecRows = 4;

  template <int RW, int RX>
  static void tile(const char* w, size_t ws, const QRows& x, int64_t r0, int64_t k, float* y,
                   int64_t ys, bool accumulate) {
    const int64_t nb = k / 32;
    const int8_t* xq[RX];
    const float* xd[RX];
    const int32_t* xs[RX];
    for (int r = 0; r < RX; ++r) {
      xq[r] = x.q + (r0 + r) * x.q_stride;
      xd[r] = x.d + (r0 + r) * x.b_stride;
      xs[r] = x.s + (r0 + r) * x.b_stride;
    }
    __m256 acc[RW][RX];
    for (int j = 0; j < RW; ++j)
      for (int r = 0; r < RX; ++r) acc[j][r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      __m256i xv[RX];
      for (int r = 0; r < RX; ++r) xv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[r] + 32 * b));
      for (int j = 0; j < RW; ++j) {
        const char* blk = w + j * ws + b * Q::kBytes;
        const typename Q::Prepared wq = Q::prepare(blk);
        const float dw = half(blk);
        for (int r = 0; r < RX; ++r) {
          const __m256i p = Q::dot(wq, xv[r], xs[r][b]);
          acc[j][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xd[r][b]), acc[j][r]);
        }
      }
    }
    for (int r = 0; r < RX; ++r)
      for (int j = 0; j < RW; ++j) y[r * ys + j] = (accumulate ? y[r * ys + j] : 0.0f) + V::hsum(acc[j][r]);
  }
};

constexpr Kernels make_table() {
  Kernels k = generic::common_table<V>(Isa::Avx2);
  k.gemm_q8_0 = &generic::gemm_quant<QTiles<Q8>>;
  k.gemm_q4_0 = &generic::gemm_quant<QTiles<Q4>>;
  return k;
}

constexpr Kernels kTable = make_table();

}  // namespace

const Kernels& kernels_avx2() { return kTable; }

}  // namespace semline::cpu
