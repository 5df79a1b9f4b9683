// The portable kernels: plain C++ for any CPU, and the reference the vector kernels are held to.
#include <cmath>

#include <semline/codec.h>

#include "kernels/generic.h"
#include "kernels/tables.h"

namespace semline::cpu {
namespace {

struct V : generic::VecShape<float, 1, 4, 2, 16> {
  static R zero() { return 0.0f; }
  static R set1(float a) { return a; }
  static R load(const float* p) { return *p; }
  static R load_n(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static void store(float* p, R v) { *p = v; }
  static void store_n(float* p, R v, int n) {
    if (n > 0) *p = v;
  }
  static float f16_to_f32(uint16_t h) { return semline::f16_to_f32(h); }
  static R load_f16(const uint16_t* p) { return semline::f16_to_f32(*p); }
  static R load_f16_n(const uint16_t* p, int n) { return n > 0 ? load_f16(p) : 0.0f; }
  static R load_bf16(const uint16_t* p) { return semline::bf16_to_f32(*p); }
  static R load_bf16_n(const uint16_t* p, int n) { return n > 0 ? load_bf16(p) : 0.0f; }
  static void store_f16(uint16_t* p, R v) { *p = semline::f32_to_f16(v); }
  static void store_f16_n(uint16_t* p, R v, int n) {
    if (n > 0) store_f16(p, v);
  }
  static R load_i8(const int8_t* p) { return static_cast<float>(*p); }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R fma(R a, R b, R c) { return std::fma(a, b, c); }
  static R min(R a, R b) { return a < b ? a : b; }
  static R max(R a, R b) { return a > b ? a : b; }
  static R abs(R a) { return std::fabs(a); }
  static float hsum(R a) { return a; }
  static void hsum4(R a, R b, R c, R d, float* out) {
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
  }
  static float hmax(R a) { return a; }
  static R exp(R x) { return std::exp(x); }
  static int32_t store_i8(R v, int8_t* q) {
    long r = std::lrint(v);
    r = r < -127 ? -127 : (r > 127 ? 127 : r);
    *q = static_cast<int8_t>(r);
    return static_cast<int32_t>(r);
  }
};

template <bool Q4>
void gemm_q(const GemmArgs& a) {
  const QRows& x = *a.xq;
  const int64_t nb = a.k / 32;
  const char* w = static_cast<const char*>(a.w);
  for (int64_t r = 0; r < a.m; ++r) {
    const int8_t* xq = x.q + r * x.q_stride;
    const float* xd = x.d + r * x.b_stride;
    for (int64_t j = a.j0; j < a.j1; ++j) {
      const char* row = w + j * a.w_stride;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t isum = 0;
        float dw;
        const int8_t* xb = xq + 32 * b;
        if constexpr (Q4) {
          const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
          for (int i = 0; i < 16; ++i) {
            isum += ((blk->qs[i] & 0x0f) - 8) * xb[i];
            isum += ((blk->qs[i] >> 4) - 8) * xb[i + 16];
          }
          dw = semline::f16_to_f32(blk->d);
        } else {
          const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
          for (int i = 0; i < 32; ++i) isum += blk->qs[i] * xb[i];
          dw = semline::f16_to_f32(blk->d);
        }
        acc += dw * xd[b] * static_cast<float>(isum);
      }
      float& out = a.y[r * a.y_stride + j];
      out = (a.accumulate ? out : 0.0f) + acc;
    }
  }
}

constexpr Kernels make_table() {
  Kernels k = generic::common_table<V>(Isa::Scalar);
  k.gemm_q8_0 = &gemm_q<false>;
  k.gemm_q4_0 = &gemm_q<true>;
  return k;
}

constexpr Kernels kTable = make_table();

}  // namespace

const Kernels& kernels_scalar() { return kTable; }

}  // namespace semline::cpu
