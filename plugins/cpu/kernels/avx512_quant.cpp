// AVX-512 + VNNI linear maps over Q8_0 and Q4_0 weights repacked at load (kernels/repack.h).
// Lane l of every register is row l of a 16-row tile: one vpdpbusd with 4 activation values
// broadcast serves 16 rows, a lane ends with its row's whole block sum (no horizontal sums), and
// one vcvtph2ps and one FMA scale a block of 16 rows. The weights' offset to unsigned (+128 for
// Q8_0, +8 for Q4_0) is taken back out with the activation block sums: sum w x = sum (w + o) x -
// o sum x.
#include "kernels/avx512_gemm.h"
#include "kernels/avx512_vec.h"
#include "kernels/repack.h"

namespace semline::cpu {
namespace {

inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// The integer dot products of one repacked block (its quants at q) with RX activation rows (x[r]
// at the block's 32 values), added into two sums per row: two chains keep enough vpdpbusd in
// flight when few rows share each weight register.
struct Q8 {
  static constexpr int kShift = 7;  // offset 128
  static constexpr size_t kQuantBytes = 512;
  template <int RX>
  static void dots(const char* q, const int8_t* const* x, __m512i* s0, __m512i* s1) {
    for (int g = 0; g < 8; g += 2) {
      const __m512i w0 = _mm512_load_si512(q + 64 * g), w1 = _mm512_load_si512(q + 64 * g + 64);
      for (int r = 0; r < RX; ++r) {
        s0[r] = _mm512_dpbusd_epi32(s0[r], w0, broadcast4(x[r] + 4 * g));
        s1[r] = _mm512_dpbusd_epi32(s1[r], w1, broadcast4(x[r] + 4 * g + 4));
      }
    }
  }
};

struct Q4 {
  static constexpr int kShift = 3;  // offset 8
  static constexpr size_t kQuantBytes = 256;
  template <int RX>
  static void dots(const char* q, const int8_t* const* x, __m512i* s0, __m512i* s1) {
    const __m512i nib = _mm512_set1_epi8(0x0f);
    for (int g = 0; g < 4; ++g) {
      const __m512i v = _mm512_load_si512(q + 64 * g);
      const __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
      for (int r = 0; r < RX; ++r) {
        s0[r] = _mm512_dpbusd_epi32(s0[r], lo, broadcast4(x[r] + 4 * g));
        s1[r] = _mm512_dpbusd_epi32(s1[r], hi, broadcast4(x[r] + 16 + 4 * g));
      }
    }
  }
};

// y[r][0..16) (+)= tile . x row r0 + r over blocks [b0, b1) of the tile at t (b0 even), r < RX;
// lanes outside `rows` are neither read nor written. `overwrite`: y is not added to.
template <class Q, int RX>
void tile(const char* t, int64_t b0, int64_t b1, const QRows& x, int64_t r0, float* y, int64_t ys, __mmask16 rows,
          bool overwrite) {
  constexpr size_t kPair = 64 + 2 * Q::kQuantBytes;
  const int8_t* xq[RX];
  const float* xd[RX];
  const int32_t* xs[RX];
  __m512 acc[RX];
  for (int r = 0; r < RX; ++r) {
    xq[r] = x.q + (r0 + r) * x.q_stride;
    xd[r] = x.d + (r0 + r) * x.b_stride;
    xs[r] = x.s + (r0 + r) * x.b_stride;
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t b = b0; b < b1; ++b) {
    const char* pair = t + static_cast<size_t>(b >> 1) * kPair;
    const size_t odd = static_cast<size_t>(b & 1);
    const __m512 wd = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(pair + 32 * odd)));
    __m512i s0[RX], s1[RX];
    const int8_t* xb[RX];
    for (int r = 0; r < RX; ++r) {
      s0[r] = _mm512_set1_epi32(-(xs[r][b] << Q::kShift));
      s1[r] = _mm512_setzero_si512();
      xb[r] = xq[r] + 32 * b;
    }
    Q::template dots<RX>(pair + 64 + odd * Q::kQuantBytes, xb, s0, s1);
    for (int r = 0; r < RX; ++r)
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0[r], s1[r])),
                               _mm512_mul_ps(wd, _mm512_set1_ps(xd[r][b])), acc[r]);
  }
  for (int r = 0; r < RX; ++r) {
    float* yr = y + (r0 + r) * ys;
    const __m512 v = overwrite ? acc[r] : _mm512_add_ps(_mm512_maskz_loadu_ps(rows, yr), acc[r]);
    _mm512_mask_storeu_ps(yr, rows, v);
  }
}

using TileFn = void (*)(const char*, int64_t, int64_t, const QRows&, int64_t, float*, int64_t, __mmask16, bool);

template <class Q>
struct Tiles {
  // tile<Q, RX> for RX = 1..kPackMinRows: the most activation rows one pass over a tile serves
  static constexpr TileFn fns[8] = {&tile<Q, 1>, &tile<Q, 2>, &tile<Q, 3>, &tile<Q, 4>,
                                    &tile<Q, 5>, &tile<Q, 6>, &tile<Q, 7>, &tile<Q, 8>};
  static_assert(kPackMinRows == 8, "one tile function per row count below kPackMinRows, and one for a full group");
};

// Blocks per k-chunk of the many-rows path: a chunk of a tile (17 KiB of Q8_0) stays in L1 while
// every group of activation rows meets it; the partial sums go through y.
constexpr int64_t kChunkBlocks = 32;

template <class Q>
void gemm(const GemmArgs& a) {
  if (a.m <= 0) return;
  const int64_t nb = a.k / 32;
  const char* w = static_cast<const char*>(a.w);
  const int64_t t0 = a.j0 / kRepackRows, t1 = (a.j1 + kRepackRows - 1) / kRepackRows;
  // Lanes of tile t inside [j0, j1).
  const auto lanes = [&](int64_t t) {
    const int64_t lo = a.j0 - t * kRepackRows, hi = a.j1 - t * kRepackRows;
    const uint32_t below_hi = hi >= 16 ? 0xffffu : (1u << hi) - 1, below_lo = lo <= 0 ? 0u : (1u << lo) - 1;
    return static_cast<__mmask16>(below_hi & ~below_lo);
  };
  if (a.m < kPackMinRows) {
    // Few rows (decode): each tile once, all its blocks, every row at once; the tiles are read
    // strictly in order.
    const TileFn f = Tiles<Q>::fns[a.m - 1];
    for (int64_t t = t0; t < t1; ++t)
      f(w + t * a.w_stride, 0, nb, *a.xq, 0, a.y + t * kRepackRows, a.y_stride, lanes(t), !a.accumulate);
    return;
  }
  // k-chunks outermost: a chunk of every activation row stays in cache while the tiles pass.
  for (int64_t b0 = 0; b0 < nb; b0 += kChunkBlocks) {
    const int64_t b1 = nb - b0 < kChunkBlocks ? nb : b0 + kChunkBlocks;
    const bool overwrite = b0 == 0 && !a.accumulate;
    for (int64_t t = t0; t < t1; ++t) {
      const char* tw = w + t * a.w_stride;
      float* y = a.y + t * kRepackRows;
      const __mmask16 mask = lanes(t);
      int64_t r = 0;
      for (; r + 8 <= a.m; r += 8) tile<Q, 8>(tw, b0, b1, *a.xq, r, y, a.y_stride, mask, overwrite);
      if (r < a.m) Tiles<Q>::fns[a.m - r - 1](tw, b0, b1, *a.xq, r, y, a.y_stride, mask, overwrite);
    }
  }
}

}  // namespace

void avx512::gemm_q8_0(const GemmArgs& a) { gemm<Q8>(a); }
void avx512::gemm_q4_0(const GemmArgs& a) { gemm<Q4>(a); }

}  // namespace semline::cpu
