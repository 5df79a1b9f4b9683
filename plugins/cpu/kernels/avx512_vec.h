// The AVX-512 vector type of the generic kernels, for the translation units compiled with
// AVX-512 flags only (each gets its own copy, in an anonymous namespace).
#pragma once

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values and then warn about them.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// __m512 as VecShape's template argument loses its may_alias attribute; the kernels only move it
// through intrinsics, never through pointers to it.
#pragma GCC diagnostic ignored "-Wignored-attributes"
#include <immintrin.h>

#include "kernels/generic.h"

namespace semline::cpu {
namespace {

// Below this many activation rows, repacking weight tiles costs more than it saves.
constexpr int64_t kPackMinRows = 8;

struct V : generic::VecShape<__m512, 16, 4, 4, 32> {
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
  SEMLINE_X86_ARITHMETIC(_mm512)
  static R abs(R a) { return _mm512_abs_ps(a); }
  static R round(R a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R ldexp(R a, R n) { return _mm512_scalef_ps(a, n); }
  static float hsum(R a) { return _mm512_reduce_add_ps(a); }
  // out[i] = the sum of the lanes of the i-th argument: pairs interleaved and added within each
  // 128-bit lane, then the four lanes added, one shuffle tree for all four.
  static void hsum4(R a, R b, R c, R d, float* out) {
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512 abcd = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
                                      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  static float hmax(R a) { return _mm512_reduce_max_ps(a); }
  static R exp(R x) { return generic::exp_approx<V>(x); }
  static int32_t store_i8(R v, int8_t* q) {
    __m512i i = _mm512_cvtps_epi32(v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(i));
    return _mm512_reduce_add_epi32(i);
  }
};

}  // namespace
}  // namespace semline::cpu
