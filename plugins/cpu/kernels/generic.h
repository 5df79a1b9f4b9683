// Kernels written once over a vector type V and compiled into each instruction set's translation
// unit with that unit's V (declared in an anonymous namespace there).
//
// Everything here is a template on V, so every instantiation is private to its translation unit:
// no function compiled for one instruction set can be picked by the linker for another. For the
// same reason these kernels call no shared inline function (not even std::min): only intrinsics,
// builtins and V.
//
// V derives from VecShape (R, W, the tile shape, kRegs) and provides zero, set1, load, load_n (first n
// lanes, rest zero), store, store_n, load_f16(_n), load_bf16(_n), store_f16(_n), load_i8 (W int8
// to float), f16_to_f32 (one value), add, sub, mul, div, fma (a * b + c), min, max, abs, round,
// ldexp, hsum, hmax, exp, store_i8 (rounds to nearest even, stores W int8, returns their sum).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/kernels.h"

namespace semline::cpu::generic {

// The shape each V declares by deriving from it: register type, floats per register, the
// register-tile shape of the float linear maps and the vector register count.
template <class Reg, int Width, int TileRows, int TileCols, int Regs>
struct VecShape {
  using R = Reg;
  static constexpr int W = Width;
  static constexpr int kTileRows = TileRows, kTileCols = TileCols;
  static constexpr int kRegs = Regs;
};

// The lane-wise arithmetic AVX2 and AVX-512 name alike (PREFIX_add_ps, ...), declared inside
// an x86 V: `SEMLINE_X86_ARITHMETIC(_mm256)`.
#define SEMLINE_X86_ARITHMETIC(P)                              \
  static R add(R a, R b) { return P##_add_ps(a, b); }          \
  static R sub(R a, R b) { return P##_sub_ps(a, b); }          \
  static R mul(R a, R b) { return P##_mul_ps(a, b); }          \
  static R div(R a, R b) { return P##_div_ps(a, b); }          \
  static R fma(R a, R b, R c) { return P##_fmadd_ps(a, b, c); } \
  static R min(R a, R b) { return P##_min_ps(a, b); }          \
  static R max(R a, R b) { return P##_max_ps(a, b); }

// Internal linkage: the one function here not templated on V must not be shared between units
// either.
template <class T>
static constexpr T lo(T a, T b) { return a < b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Weight-row loaders for the float kernels: W values starting at element i of a row.

enum class RowType { F32, F16, BF16 };

template <class V, RowType T>
struct LoadRow {
  using E = std::conditional_t<T == RowType::F32, float, uint16_t>;
  static constexpr int kBytes = sizeof(E);
  static constexpr bool kBlockScaled = false;
  static typename V::R load(const void* row, int64_t i) {
    const E* p = static_cast<const E*>(row) + i;
    if constexpr (T == RowType::F32) return V::load(p);
    else if constexpr (T == RowType::F16) return V::load_f16(p);
    else return V::load_bf16(p);
  }
  static typename V::R load_n(const void* row, int64_t i, int n) {
    const E* p = static_cast<const E*>(row) + i;
    if constexpr (T == RowType::F32) return V::load_n(p, n);
    else if constexpr (T == RowType::F16) return V::load_f16_n(p, n);
    else return V::load_bf16_n(p, n);
  }
};
template <class V>
using LoadF32 = LoadRow<V, RowType::F32>;
template <class V>
using LoadF16 = LoadRow<V, RowType::F16>;
template <class V>
using LoadBF16 = LoadRow<V, RowType::BF16>;

// Q8_0 rows (the KV cache's): blocks of 32 values, an F16 scale and 32 int8. W divides 32 and the
// kernels step i by W from 0, so the W values at i lie in one block.
template <class V>
struct LoadQ8 {
  static constexpr int kBytes = 1;  // 34 bytes per 32 values: the prefetch distance, nearly
  // load(i) = scale(i) * raw(i): the kernels that walk whole blocks take the scale once per block
  // (gemm_tile, pv_block) instead of once per W values.
  static constexpr bool kBlockScaled = true;
  static float scale(const void* row, int64_t i) {
    uint16_t d;
    std::memcpy(&d, static_cast<const char*>(row) + i / 32 * 34, 2);
    return V::f16_to_f32(d);
  }
  static typename V::R raw(const void* row, int64_t i) {
    return V::load_i8(reinterpret_cast<const int8_t*>(static_cast<const char*>(row) + i / 32 * 34 + 2 + i % 32));
  }
  static typename V::R load(const void* row, int64_t i) { return V::mul(V::set1(scale(row, i)), raw(row, i)); }
  static typename V::R load_n(const void* row, int64_t i, int n) {
    float v[V::W > 1 ? V::W : 1];
    for (int l = 0; l < n; ++l) {
      const char* blk = static_cast<const char*>(row) + (i + l) / 32 * 34;
      uint16_t d;
      std::memcpy(&d, blk, 2);
      v[l] = V::f16_to_f32(d) * static_cast<float>(static_cast<int8_t>(blk[2 + (i + l) % 32]));
    }
    return V::load_n(v, n);
  }
};

// ---------------------------------------------------------------------------------------------
// Element-wise kernels

template <class V>
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  using R = typename V::R;
  R a0 = V::zero(), a1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    R u = V::load(x + i), v = V::load(x + i + V::W);
    a0 = V::fma(u, u, a0);
    a1 = V::fma(v, v, a1);
  }
  for (; i < n; i += V::W) {
    R u = V::load_n(x + i, static_cast<int>(lo<int64_t>(V::W, n - i)));
    a0 = V::fma(u, u, a0);
  }
  float ss = V::hsum(V::add(a0, a1));
  R r = V::set1(1.0f / std::sqrt(ss / static_cast<float>(n) + eps));
  for (i = 0; i + V::W <= n; i += V::W) V::store(y + i, V::mul(V::mul(V::load(x + i), r), V::load(w + i)));
  if (i < n) {
    int t = static_cast<int>(n - i);
    V::store_n(y + i, V::mul(V::mul(V::load_n(x + i, t), r), V::load_n(w + i, t)), t);
  }
}

// Two passes over x (mean, then the deviations from it): one pass of sum and sum of squares loses
// the variance to cancellation when the mean is large next to the spread. The second pass also
// sums the deviations, which corrects the float mean (the corrected two-pass algorithm): a plain
// float sum of n values near m is off by ~sqrt(n) ulps of n * m, which a wide row with a large
// mean carries straight into every output.
template <class V>
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  using R = typename V::R;
  R s = V::zero();
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) s = V::add(s, V::load(x + i));
  if (i < n) s = V::add(s, V::load_n(x + i, static_cast<int>(n - i)));
  const float mean0 = V::hsum(s) / static_cast<float>(n);
  R mv = V::set1(mean0);
  R ss = V::zero(), sd = V::zero();
  for (i = 0; i + V::W <= n; i += V::W) {
    const R d = V::sub(V::load(x + i), mv);
    ss = V::fma(d, d, ss);
    sd = V::add(sd, d);
  }
  if (i < n) {
    const int t = static_cast<int>(n - i);
    float d[V::W];
    V::store(d, V::sub(V::load_n(x + i, t), mv));
    const R dv = V::load_n(d, t);  // the lanes past n would each add mean^2
    ss = V::fma(dv, dv, ss);
    sd = V::add(sd, dv);
  }
  const float corr = V::hsum(sd) / static_cast<float>(n);
  mv = V::set1(mean0 + corr);
  const R r = V::set1(1.0f / std::sqrt(V::hsum(ss) / static_cast<float>(n) - corr * corr + eps));
  for (i = 0; i + V::W <= n; i += V::W)
    V::store(y + i, V::fma(V::mul(V::sub(V::load(x + i), mv), r), V::load(w + i), V::load(b + i)));
  if (i < n) {
    const int t = static_cast<int>(n - i);
    V::store_n(y + i, V::fma(V::mul(V::sub(V::load_n(x + i, t), mv), r), V::load_n(w + i, t), V::load_n(b + i, t)), t);
  }
}

template <class V>
float max(const float* x, int64_t n) {
  using R = typename V::R;
  R m = V::set1(x[0]);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) m = V::max(m, V::load(x + i));
  float r = V::hmax(m);
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

template <class V>
float exp_sum(float* x, int64_t n, float m) {
  using R = typename V::R;
  R mv = V::set1(m), s = V::zero();
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) {
    R e = V::exp(V::sub(V::load(x + i), mv));
    V::store(x + i, e);
    s = V::add(s, e);
  }
  if (i < n) {
    int t = static_cast<int>(n - i);
    R e = V::exp(V::sub(V::load_n(x + i, t), mv));
    V::store_n(x + i, e, t);
    s = V::add(s, V::load_n(x + i, t));  // the lanes past n must not count
  }
  return V::hsum(s);
}

template <class V>
void scale(float* y, float a, int64_t n) {
  typename V::R av = V::set1(a);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, V::mul(V::load(y + i), av));
  if (i < n) {
    int t = static_cast<int>(n - i);
    V::store_n(y + i, V::mul(V::load_n(y + i, t), av), t);
  }
}

template <class V>
void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float m = max<V>(x, n);
  float s = exp_sum<V>(x, n, m);
  scale<V>(x, 1.0f / s, n);
}

template <class V>
void silu_mul(const float* g, const float* u, float* y, int64_t n) {
  using R = typename V::R;
  const R one = V::set1(1.0f), zero = V::zero();
  auto f = [&](R gv, R uv) { return V::mul(V::div(gv, V::add(one, V::exp(V::sub(zero, gv)))), uv); };
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, f(V::load(g + i), V::load(u + i)));
  if (i < n) {
    int t = static_cast<int>(n - i);
    V::store_n(y + i, f(V::load_n(g + i, t), V::load_n(u + i, t)), t);
  }
}

// GELU as max(x, 0) - |x| erfc(|x| / sqrt2) / 2, which is x Phi(x) on both sides of 0 and keeps
// its relative accuracy in the negative tail (no 1 + erf(x) cancellation). erfc(a) for a >= 0 is
// t exp(-a^2 + P(t)), t = 1 / (1 + a/2), with the Chebyshev-fitted P of Numerical Recipes'
// erfcc (relative error below 1.2e-7 for every a); -a^2 + P is formed by one fma from x, so the
// exponent is rounded once.
template <class V>
typename V::R gelu_erf(typename V::R x) {
  using R = typename V::R;
  const R u = V::abs(x);
  const R t = V::div(V::set1(1.0f), V::fma(u, V::set1(0.5f * 0.70710678118654752f), V::set1(1.0f)));
  R p = V::set1(0.17087277f);
  p = V::fma(p, t, V::set1(-0.82215223f));
  p = V::fma(p, t, V::set1(1.48851587f));
  p = V::fma(p, t, V::set1(-1.13520398f));
  p = V::fma(p, t, V::set1(0.27886807f));
  p = V::fma(p, t, V::set1(-0.18628806f));
  p = V::fma(p, t, V::set1(0.09678418f));
  p = V::fma(p, t, V::set1(0.37409196f));
  p = V::fma(p, t, V::set1(1.00002368f));
  p = V::fma(p, t, V::set1(-1.26551223f));
  const R e = V::mul(t, V::exp(V::fma(V::mul(u, V::set1(-0.5f)), u, p)));  // erfc(|x| / sqrt2)
  return V::sub(V::max(x, V::zero()), V::mul(V::mul(u, V::set1(0.5f)), e));
}

// 0.5 x (1 + tanh(z)) written as x / (1 + exp(-2z)), the same function without the cancellation
// of 1 + tanh(z) for negative z.
template <class V>
typename V::R gelu_tanh_of(typename V::R x) {
  using R = typename V::R;
  const R z2 = V::mul(x, V::fma(V::mul(x, x), V::set1(-2.0f * 0.79788456080286536f * 0.044715f),
                                V::set1(-2.0f * 0.79788456080286536f)));  // -2z
  return V::div(x, V::add(V::set1(1.0f), V::exp(z2)));
}

template <class V, typename V::R (*F)(typename V::R)>
void elementwise(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, F(V::load(x + i)));
  if (i < n) {
    const int t = static_cast<int>(n - i);
    V::store_n(y + i, F(V::load_n(x + i, t)), t);
  }
}

template <class V>
void add(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, V::add(V::load(y + i), V::load(x + i)));
  if (i < n) {
    const int t = static_cast<int>(n - i);
    V::store_n(y + i, V::add(V::load_n(y + i, t), V::load_n(x + i, t)), t);
  }
}

template <class V, class L>
float dot(const void* a, const float* b, int64_t n) {
  using R = typename V::R;
  R s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * V::W <= n; i += 4 * V::W) {
    s0 = V::fma(L::load(a, i), V::load(b + i), s0);
    s1 = V::fma(L::load(a, i + V::W), V::load(b + i + V::W), s1);
    s2 = V::fma(L::load(a, i + 2 * V::W), V::load(b + i + 2 * V::W), s2);
    s3 = V::fma(L::load(a, i + 3 * V::W), V::load(b + i + 3 * V::W), s3);
  }
  for (; i < n; i += V::W) {
    int t = static_cast<int>(lo<int64_t>(V::W, n - i));
    s0 = V::fma(L::load_n(a, i, t), V::load_n(b + i, t), s0);
  }
  return V::hsum(V::add(V::add(s0, s1), V::add(s2, s3)));
}

template <class V, class L>
void axpy(float a, const void* x, float* y, int64_t n) {
  typename V::R av = V::set1(a);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, V::fma(av, L::load(x, i), V::load(y + i)));
  if (i < n) {
    int t = static_cast<int>(n - i);
    V::store_n(y + i, V::fma(av, L::load_n(x, i, t), V::load_n(y + i, t)), t);
  }
}

template <class V>
void to_f16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store_f16(y + i, V::load(x + i));
  if (i < n) {
    int t = static_cast<int>(n - i);
    V::store_f16_n(y + i, V::load_n(x + i, t), t);
  }
}

// Angles are prepared by the caller in double precision, so large positions lose nothing here.
template <class V>
void rope(float* x, int64_t n_heads, int64_t head_stride, int64_t rope_dim, const float* cs,
          RopeType type) {
  const int64_t half = rope_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* p = x + h * head_stride;
    for (int64_t i = 0; i < half; ++i) {
      float* a = type == RopeType::NeoX ? p + i : p + 2 * i;
      float* b = type == RopeType::NeoX ? p + i + half : p + 2 * i + 1;
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float x0 = *a, x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x0 * s + x1 * c;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Quantisation of activations and dequantisation of weight rows

template <class V>
void quantize_q8(const float* x, int64_t n, int8_t* q, float* d, int32_t* s) {
  using R = typename V::R;
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + 32 * b;
    R m = V::zero();
    for (int i = 0; i < 32; i += V::W) m = V::max(m, V::abs(V::load(xb + i)));
    const float amax = V::hmax(m);
    const float db = amax / 127.0f;
    const R id = V::set1(db != 0.0f ? 1.0f / db : 0.0f);
    int32_t sum = 0;
    for (int i = 0; i < 32; i += V::W) sum += V::store_i8(V::mul(V::load(xb + i), id), q + 32 * b + i);
    d[b] = db;
    s[b] = sum;
  }
}

// A row into Q8_0 blocks as ggml's quantize_row_q8_0: the scale from the float maximum, stored
// rounded to F16 (n a multiple of 32).
template <class V>
void to_q8_0(const float* x, void* y, int64_t n) {
  using R = typename V::R;
  char* out = static_cast<char*>(y);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + 32 * b;
    char* blk = out + 34 * b;
    R m = V::zero();
    for (int i = 0; i < 32; i += V::W) m = V::max(m, V::abs(V::load(xb + i)));
    const float d = V::hmax(m) / 127.0f;
    const R id = V::set1(d != 0.0f ? 1.0f / d : 0.0f);
    int8_t q[32];
    for (int i = 0; i < 32; i += V::W) V::store_i8(V::mul(V::load(xb + i), id), q + i);
    uint16_t dh;
    V::store_f16_n(&dh, V::set1(d), 1);
    std::memcpy(blk, &dh, 2);
    std::memcpy(blk + 2, q, 32);
  }
}

template <class V>
void dequantize_row(DType t, const void* src, float* y, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(y, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
    case DType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      int64_t i = 0;
      const bool f16 = t == DType::F16;
      for (; i + V::W <= n; i += V::W) V::store(y + i, f16 ? V::load_f16(h + i) : V::load_bf16(h + i));
      if (i < n) {
        int r = static_cast<int>(n - i);
        V::store_n(y + i, f16 ? V::load_f16_n(h + i, r) : V::load_bf16_n(h + i, r), r);
      }
      return;
    }
    case DType::Q8_0:
    case DType::Q4_0: {
      const bool q8 = t == DType::Q8_0;
      const auto* base = static_cast<const unsigned char*>(src);
      const size_t bytes = q8 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
      for (int64_t b = 0; b < n / 32; ++b) {
        const unsigned char* blk = base + b * bytes;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        int8_t v[32];
        if (q8) {
          std::memcpy(v, blk + 2, 32);
        } else {
          for (int i = 0; i < 16; ++i) {
            v[i] = static_cast<int8_t>((blk[2 + i] & 0x0f) - 8);
            v[i + 16] = static_cast<int8_t>((blk[2 + i] >> 4) - 8);
          }
        }
        const typename V::R dv = V::set1(V::f16_to_f32(dh));
        for (int i = 0; i < 32; i += V::W) V::store(y + 32 * b + i, V::mul(dv, V::load_i8(v + i)));
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Float-weight linear maps: register tiles of RW weight rows by RX activation rows, each
// accumulator a vector of partial sums over k, reduced once at the end.

template <class V, class L, int RW, int RX>
void gemm_tile(const char* w, size_t ws, const float* x, int64_t xs, int64_t k, float* y,
               int64_t ys, bool accumulate) {
  using R = typename V::R;
  R acc[RW][RX];
  for (int j = 0; j < RW; ++j)
    for (int r = 0; r < RX; ++r) acc[j][r] = V::zero();
  int64_t i = 0;
  R scale[RW];  // block-scaled rows: each row's scale of the block at i, set where a block starts
  R part[RW];   // and, for one activation row, the products of that block so far
  for (int j = 0; j < RW; ++j) scale[j] = part[j] = V::zero();
  for (; i + V::W <= k; i += V::W) {
    R wv[RW];
    for (int j = 0; j < RW; ++j) {
      // The same place in the next tile's rows: more lines in flight than the hardware
      // prefetcher alone keeps when a matrix streams from memory.
      __builtin_prefetch(w + (j + RW) * ws + i * L::kBytes);
      if constexpr (L::kBlockScaled && RX == 1) {
        // One activation row (a decode step's query): a block's products summed raw, then scaled.
        if (i % 32 == 0) {
          if (i > 0) acc[j][0] = V::fma(scale[j], part[j], acc[j][0]);
          scale[j] = V::set1(L::scale(w + j * ws, i));
          part[j] = V::zero();
        }
        wv[j] = L::raw(w + j * ws, i);
      } else if constexpr (L::kBlockScaled) {
        if (i % 32 == 0) scale[j] = V::set1(L::scale(w + j * ws, i));
        wv[j] = V::mul(scale[j], L::raw(w + j * ws, i));
      } else {
        wv[j] = L::load(w + j * ws, i);
      }
    }
    if constexpr (L::kBlockScaled && RX == 1) {
      const R xv = V::load(x + i);
      for (int j = 0; j < RW; ++j) part[j] = V::fma(wv[j], xv, part[j]);
      continue;
    }
    for (int r = 0; r < RX; ++r) {
      const R xv = V::load(x + r * xs + i);
      for (int j = 0; j < RW; ++j) acc[j][r] = V::fma(wv[j], xv, acc[j][r]);
    }
  }
  if constexpr (L::kBlockScaled && RX == 1)
    if (i > 0)
      for (int j = 0; j < RW; ++j) acc[j][0] = V::fma(scale[j], part[j], acc[j][0]);
  if (i < k) {
    const int t = static_cast<int>(k - i);
    R wv[RW];
    for (int j = 0; j < RW; ++j) wv[j] = L::load_n(w + j * ws, i, t);
    for (int r = 0; r < RX; ++r) {
      const R xv = V::load_n(x + r * xs + i, t);
      for (int j = 0; j < RW; ++j) acc[j][r] = V::fma(wv[j], xv, acc[j][r]);
    }
  }
  for (int r = 0; r < RX; ++r) {
    for (int j = 0; j < RW; ++j)
      y[r * ys + j] = (accumulate ? y[r * ys + j] : 0.0f) + V::hsum(acc[j][r]);
  }
}

// The order both linear maps visit their tiles in: activation rows in blocks of mb (kept in
// cache while the weight rows stream past), each block's weight rows [j0, j1) RW at a time, and
// the block's rows RX at a time; `tile(rw, rx, j, r)` gets the clipped tile shape at the edges.
template <int RW, int RX, class Tile>
static void for_each_tile(const GemmArgs& a, int64_t mb, Tile tile) {
  for (int64_t r0 = 0; r0 < a.m; r0 += mb) {
    const int64_t r1 = lo(a.m, r0 + mb);
    for (int64_t j = a.j0; j < a.j1; j += RW) {
      const int rw = static_cast<int>(lo<int64_t>(RW, a.j1 - j));
      for (int64_t r = r0; r < r1; r += RX) tile(rw, static_cast<int>(lo<int64_t>(RX, r1 - r)), j, r);
    }
  }
}

template <class V, class L>
using FloatTile = void (*)(const char*, size_t, const float*, int64_t, int64_t, float*, int64_t, bool);

template <class V, class L, int RW, int... RX>
struct FloatTileRow {
  static constexpr FloatTile<V, L> fns[] = {&gemm_tile<V, L, RW, RX>...};
};

template <class V, class L>
void gemm_float(const GemmArgs& a) {
  constexpr int RW = V::kTileRows, RX = V::kTileCols;
  static_assert(RW <= 4 && RX <= 4, "tile table below covers up to 4 x 4");
  static constexpr const FloatTile<V, L>* table[4] = {
      FloatTileRow<V, L, 1, 1, 2, 3, 4>::fns, FloatTileRow<V, L, 2, 1, 2, 3, 4>::fns,
      FloatTileRow<V, L, 3, 1, 2, 3, 4>::fns, FloatTileRow<V, L, 4, 1, 2, 3, 4>::fns};
  // Activation rows in blocks that stay in the L2 cache while the weight rows stream past them.
  const int64_t mb = lo<int64_t>(a.m, (int64_t{1} << 19) / (4 * a.k) / RX * RX + RX);
  const char* w = static_cast<const char*>(a.w);
  if (a.m == 1 && a.prefetch == Prefetch::Hardware) {
    // One row after another: the rows of the range are one sequential stream (see Prefetch).
    for (int64_t j = a.j0; j < a.j1; ++j)
      a.y[j] = (a.accumulate ? a.y[j] : 0.0f) + dot<V, L>(w + j * a.w_stride, a.x, a.k);
    return;
  }
  for_each_tile<RW, RX>(a, mb, [&](int rw, int rx, int64_t j, int64_t r) {
    table[rw - 1][rx - 1](w + j * a.w_stride, a.w_stride, a.x + r * a.x_stride, a.x_stride, a.k,
                          a.y + r * a.y_stride + j, a.y_stride, a.accumulate);
  });
}

// Block-quantised linear maps: the same loop around an instruction set's register tile
// T::tile<RW, RX>(w, w_stride, x, first x row, k, y, y_stride, accumulate), with tiles of
// T::kTileRows x T::kTileCols, or T::kMatvecRows x 1 for a single activation row.
template <class T>
using QuantTile = void (*)(const char*, size_t, const QRows&, int64_t, int64_t, float*, int64_t, bool);

template <class T, int RW, int... RX>
struct QuantTileRow {
  static constexpr QuantTile<T> fns[] = {&T::template tile<RW, RX>...};
};

template <class T>
void gemm_quant(const GemmArgs& a) {
  constexpr int RW = T::kTileRows, RX = T::kTileCols;
  static_assert(RW <= 4 && RX <= 4, "tile table below covers up to 4 x 4");
  static constexpr const QuantTile<T>* table[4] = {
      QuantTileRow<T, 1, 1, 2, 3, 4>::fns, QuantTileRow<T, 2, 1, 2, 3, 4>::fns,
      QuantTileRow<T, 3, 1, 2, 3, 4>::fns, QuantTileRow<T, 4, 1, 2, 3, 4>::fns};
  const char* w = static_cast<const char*>(a.w);
  if constexpr (T::kMatvecRows > RW) {
    // One activation row: taller tiles keep more weight rows streaming at once.
    if (a.m == 1) {
      constexpr int MR = T::kMatvecRows;
      int64_t j = a.j0;
      for (; j + MR <= a.j1; j += MR)
        T::template tile<MR, 1>(w + j * a.w_stride, a.w_stride, *a.xq, 0, a.k, a.y + j, a.y_stride, a.accumulate);
      for (; j < a.j1; j += RW)
        table[lo<int64_t>(RW, a.j1 - j) - 1][0](w + j * a.w_stride, a.w_stride, *a.xq, 0, a.k, a.y + j, a.y_stride,
                                                a.accumulate);
      return;
    }
  }
  const int64_t mb = lo<int64_t>(a.m, (int64_t{1} << 20) / (2 * a.k) / RX * RX + RX);
  for_each_tile<RW, RX>(a, mb, [&](int rw, int rx, int64_t j, int64_t r) {
    table[rw - 1][rx - 1](w + j * a.w_stride, a.w_stride, *a.xq, r, a.k, a.y + r * a.y_stride + j, a.y_stride,
                          a.accumulate);
  });
}

// ---------------------------------------------------------------------------------------------
// Attention scores of one query row (a decode step whose heads share no kv head): s[j] = q . k_j
// for j < n, k_j at k + j * ks bytes. The query's NC vectors stay in registers while the keys
// stream past four at a time, each key summed in one accumulator and the four reduced by one
// shuffle tree: a key costs its loads, NC products and a quarter of a reduction, not a register
// tile's setup and a horizontal sum of its own. A decode step at depth waits on its keys' loads,
// and the fewer instructions per key, the more of them the core keeps in flight.

// acc[u] = the lane-wise products of the query with key u (U keys ks bytes apart from row).
template <class V, class L, int NC, int U>
void qk_keys(const typename V::R* qv, const char* row, size_t ks, typename V::R* acc) {
  using R = typename V::R;
  if constexpr (L::kBlockScaled) {  // each block's raw products, then its scale once
    constexpr int PB = 32 / V::W;   // vectors per block; NC * W is a multiple of 32
    for (int u = 0; u < U; ++u) acc[u] = V::zero();
    for (int c = 0; c < NC; c += PB)
      for (int u = 0; u < U; ++u) {
        const char* r = row + u * ks;
        R part = V::mul(L::raw(r, c * V::W), qv[c]);
        for (int e = 1; e < PB; ++e) part = V::fma(L::raw(r, (c + e) * V::W), qv[c + e], part);
        acc[u] = V::fma(V::set1(L::scale(r, c * V::W)), part, acc[u]);
      }
  } else {
    for (int u = 0; u < U; ++u) acc[u] = V::mul(L::load(row + u * ks, 0), qv[0]);
    for (int c = 1; c < NC; ++c)
      for (int u = 0; u < U; ++u) acc[u] = V::fma(L::load(row + u * ks, c * V::W), qv[c], acc[u]);
  }
}

template <class V, class L, int NC>
void qk_row_regs(const float* q, const RowRuns& k, float* s) {
  using R = typename V::R;
  R qv[NC];
  for (int c = 0; c < NC; ++c) qv[c] = V::load(q + c * V::W);
  const size_t ks = k.stride;
  for (int32_t i = 0; i < k.n; s += k.len[i], ++i) {
    const char* row = k.first[i];
    const int64_t n = k.len[i];
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      R acc[4];
      qk_keys<V, L, NC, 4>(qv, row + j * ks, ks, acc);
      V::hsum4(acc[0], acc[1], acc[2], acc[3], s + j);
    }
    // The last keys of a run through the same sum tree as four (hsum4 sums each argument on its
    // own): a key's score does not depend on where its run starts, so on how the cache's blocks
    // happen to lie.
    if (j < n) {
      R acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
      for (int64_t u = 0; j + u < n; ++u) qk_keys<V, L, NC, 1>(qv, row + (j + u) * ks, ks, acc + u);
      float last[4];
      V::hsum4(acc[0], acc[1], acc[2], acc[3], last);
      std::copy(last, last + (n - j), s + j);
    }
  }
}

// Head sizes whose query fits in at most half the registers (Q8_0 keys: whole blocks of 32); the
// others take one dot product per key.
template <class V, class L, int NC>
constexpr bool qk_row_fits = 2 * NC <= V::kRegs && (!L::kBlockScaled || NC * V::W % 32 == 0);

template <class V, class L>
void qk_row(const float* q, const RowRuns& k, int64_t hd, float* s) {
  float rounded[256];  // Q8_0 keys meet the query rounded to 8 bits (kernels.h)
  std::vector<float> longer;
  if constexpr (L::kBlockScaled) {
    float* r = hd <= 256 ? rounded : (longer.resize(static_cast<size_t>(hd)), longer.data());
    std::copy(q, q + hd, r);
    round_q8_blocks(r, hd);
    q = r;
  }
  void (*fn)(const float*, const RowRuns&, float*) = nullptr;
  auto pick = [&]<int NC>() {
    if constexpr (qk_row_fits<V, L, NC>)
      if (hd == NC * V::W) fn = &qk_row_regs<V, L, NC>;
  };
  [&]<int... NC>(std::integer_sequence<int, NC...>) {
    (pick.template operator()<NC + 1>(), ...);
  }(std::make_integer_sequence<int, 16>{});
  if (fn) return fn(q, k, s);
  for (int32_t i = 0; i < k.n; s += k.len[i], ++i)
    for (int32_t j = 0; j < k.len[i]; ++j) s[j] = dot<V, L>(k.first[i] + j * k.stride, q, hd);
}

// ---------------------------------------------------------------------------------------------
// Attention: o[r] += sum_j p[r][j] * v_j, the output row held in registers over all j.

// RR output rows at once share each loaded value row; rows whose causal range ends early take
// zero weights past it.
template <class V, class L, int NV, int RR>
void pv_block(const float* p, int64_t ps, const int32_t* nv, const RowRuns& v, int64_t c0, float* o, int64_t os) {
  using R = typename V::R;
  R acc[RR][NV];
  int32_t common = nv[0], longest = nv[0];
  for (int rr = 0; rr < RR; ++rr) {
    for (int c = 0; c < NV; ++c) acc[rr][c] = V::load(o + rr * os + c0 + c * V::W);
    common = lo(common, nv[rr]);
    longest = nv[rr] > longest ? nv[rr] : longest;
  }
  // acc[rr] += pw[rr] * value row j.
  auto add = [&](const char* row, const float* pw) {
    R vj[NV];
    if constexpr (L::kBlockScaled) {  // the weight times a block's scale once, then its raw values
      float d[NV];
      for (int c = 0; c < NV; ++c) {
        vj[c] = L::raw(row, c0 + c * V::W);
        d[c] = c > 0 && (c0 + c * V::W) % 32 != 0 ? d[c - 1] : L::scale(row, c0 + c * V::W);
      }
      for (int rr = 0; rr < RR; ++rr) {
        R s = V::zero();
        for (int c = 0; c < NV; ++c) {
          if (c == 0 || (c0 + c * V::W) % 32 == 0) s = V::set1(pw[rr] * d[c]);
          acc[rr][c] = V::fma(s, vj[c], acc[rr][c]);
        }
      }
    } else {
      for (int c = 0; c < NV; ++c) vj[c] = L::load(row, c0 + c * V::W);
      for (int rr = 0; rr < RR; ++rr) {
        const R pj = V::set1(pw[rr]);
        for (int c = 0; c < NV; ++c) acc[rr][c] = V::fma(pj, vj[c], acc[rr][c]);
      }
    }
  };
  float pw[RR];
  int32_t j = 0;
  for (int32_t i = 0; i < v.n && j < longest; ++i) {
    const char* row = v.first[i];
    const int32_t end = lo(j + v.len[i], longest), both = lo(end, common);
    for (; j < both; ++j, row += v.stride) {
      for (int rr = 0; rr < RR; ++rr) pw[rr] = p[rr * ps + j];
      add(row, pw);
    }
    for (; j < end; ++j, row += v.stride) {
      for (int rr = 0; rr < RR; ++rr) pw[rr] = j < nv[rr] ? p[rr * ps + j] : 0.0f;
      add(row, pw);
    }
  }
  for (int rr = 0; rr < RR; ++rr)
    for (int c = 0; c < NV; ++c) V::store(o + rr * os + c0 + c * V::W, acc[rr][c]);
}

template <class V, class L, int RR>
void pv_rows(const float* p, int64_t ps, const int32_t* nv, const RowRuns& v, int64_t hd, float* o, int64_t os) {
  using R = typename V::R;
  constexpr int NV = RR > 1 ? 4 : 8;  // accumulators RR x NV, plus NV value registers
  int64_t c0 = 0;
  for (; c0 + NV * V::W <= hd; c0 += NV * V::W) pv_block<V, L, NV, RR>(p, ps, nv, v, c0, o, os);
  switch ((hd - c0) / V::W) {
    case 7: pv_block<V, L, 7, RR>(p, ps, nv, v, c0, o, os); break;
    case 6: pv_block<V, L, 6, RR>(p, ps, nv, v, c0, o, os); break;
    case 5: pv_block<V, L, 5, RR>(p, ps, nv, v, c0, o, os); break;
    case 4: pv_block<V, L, 4, RR>(p, ps, nv, v, c0, o, os); break;
    case 3: pv_block<V, L, 3, RR>(p, ps, nv, v, c0, o, os); break;
    case 2: pv_block<V, L, 2, RR>(p, ps, nv, v, c0, o, os); break;
    case 1: pv_block<V, L, 1, RR>(p, ps, nv, v, c0, o, os); break;
    default: break;
  }
  c0 += (hd - c0) / V::W * V::W;
  if (c0 < hd) {
    const int t = static_cast<int>(hd - c0);
    for (int rr = 0; rr < RR; ++rr) {
      R acc = V::load_n(o + rr * os + c0, t);
      int32_t j = 0;
      for (int32_t i = 0; i < v.n && j < nv[rr]; ++i) {
        const int32_t end = lo(j + v.len[i], nv[rr]);
        for (const char* row = v.first[i]; j < end; ++j, row += v.stride)
          acc = V::fma(V::set1(p[rr * ps + j]), L::load_n(row, c0, t), acc);
      }
      V::store_n(o + rr * os + c0, acc, t);
    }
  }
}

template <class V, class L>
void pv(const float* p, int64_t p_stride, const int32_t* nv, int64_t rows, const RowRuns& v, int64_t hd, float* o,
        int64_t o_stride) {
  int64_t r = 0;
  if constexpr (V::kRegs >= 32)
    for (; r + 4 <= rows; r += 4) pv_rows<V, L, 4>(p + r * p_stride, p_stride, nv + r, v, hd, o + r * o_stride, o_stride);
  for (; r < rows; ++r) pv_rows<V, L, 1>(p + r * p_stride, p_stride, nv + r, v, hd, o + r * o_stride, o_stride);
}

// The parts of a table every instruction set shares.
template <class V>
constexpr Kernels common_table(Isa isa) {
  Kernels k{};
  k.isa = isa;
  k.gemm_f32 = &gemm_float<V, LoadF32<V>>;
  k.gemm_f16 = &gemm_float<V, LoadF16<V>>;
  k.gemm_bf16 = &gemm_float<V, LoadBF16<V>>;
  k.quantize_q8 = &quantize_q8<V>;
  k.rms_norm = &rms_norm<V>;
  k.layer_norm = &layer_norm<V>;
  k.rope = &rope<V>;
  k.softmax = &softmax<V>;
  k.silu_mul = &silu_mul<V>;
  k.gelu = &elementwise<V, &gelu_erf<V>>;
  k.gelu_tanh = &elementwise<V, &gelu_tanh_of<V>>;
  k.add = &add<V>;
  k.dot_f32 = [](const float* a, const float* b, int64_t n) { return dot<V, LoadF32<V>>(a, b, n); };
  k.dot_f16 = [](const uint16_t* a, const float* b, int64_t n) { return dot<V, LoadF16<V>>(a, b, n); };
  k.axpy_f32 = [](float s, const float* x, float* y, int64_t n) { axpy<V, LoadF32<V>>(s, x, y, n); };
  k.axpy_f16 = [](float s, const uint16_t* x, float* y, int64_t n) { axpy<V, LoadF16<V>>(s, x, y, n); };
  k.scale = &scale<V>;
  k.max = &max<V>;
  k.exp_sum = &exp_sum<V>;
  k.to_f16 = &to_f16<V>;
  k.dequantize_row = &dequantize_row<V>;
  k.pv_f32 = &pv<V, LoadF32<V>>;
  k.qk_row_f32 = &qk_row<V, LoadF32<V>>;
  k.qk_row_f16 = &qk_row<V, LoadF16<V>>;
  k.qk_row_q8_0 = &qk_row<V, LoadQ8<V>>;
  k.pv_f16 = &pv<V, LoadF16<V>>;
  k.gemm_q8_0_rows = &gemm_float<V, LoadQ8<V>>;
  k.dot_q8_0 = [](const void* a, const float* b, int64_t n) { return dot<V, LoadQ8<V>>(a, b, n); };
  k.axpy_q8_0 = [](float s, const void* x, float* y, int64_t n) { axpy<V, LoadQ8<V>>(s, x, y, n); };
  k.pv_q8_0 = &pv<V, LoadQ8<V>>;
  k.to_q8_0 = &to_q8_0<V>;
  return k;
}

// exp(x) for float lanes: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor series to
// degree 7 (truncation below 1e-8 relative), times 2^n. Inputs are clamped to the range where
// the result is a normal float.
template <class V>
typename V::R exp_approx(typename V::R x) {
  using R = typename V::R;
  x = V::min(V::max(x, V::set1(-87.0f)), V::set1(88.0f));
  const R n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  R r = V::fma(n, V::set1(-0.693145751953125f), x);   // ln2 high part (exact in float)
  r = V::fma(n, V::set1(-1.428606765330187e-06f), r);  // ln2 low part
  R p = V::set1(1.0f / 5040);
  p = V::fma(p, r, V::set1(1.0f / 720));
  p = V::fma(p, r, V::set1(1.0f / 120));
  p = V::fma(p, r, V::set1(1.0f / 24));
  p = V::fma(p, r, V::set1(1.0f / 6));
  p = V::fma(p, r, V::set1(0.5f));
  p = V::fma(p, r, V::set1(1.0f));
  p = V::fma(p, r, V::set1(1.0f));
  return V::ldexp(p, n);
}

}  // namespace semline::cpu::generic
