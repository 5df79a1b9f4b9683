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

// y[r][16 i .. 16 i + 16) (+)= tile i . x row r0 + r over blocks [b0, b1) (b0 even) of NT
// consecutive tiles from t (ts bytes apart), for r < RX and i < NT; lanes outside rows[i] are
// neither read nor written. `overwrite`: y is not added to. Ahead > 0: each tile's bytes that far
// ahead are prefetched as it is read.
template <class Q, int NT, int RX, size_t Ahead>
void tiles(const char* t, size_t ts, int64_t b0, int64_t b1, const QRows& x, int64_t r0, float* y, int64_t ys,
           const __mmask16* rows, bool overwrite) {
  constexpr size_t kPair = 64 + 2 * Q::kQuantBytes;
  const int8_t* xq[RX];
  const float* xd[RX];
  const int32_t* xs[RX];
  __m512 acc[NT][RX];
  for (int r = 0; r < RX; ++r) {
    xq[r] = x.q + (r0 + r) * x.q_stride;
    xd[r] = x.d + (r0 + r) * x.b_stride;
    xs[r] = x.s + (r0 + r) * x.b_stride;
    for (int i = 0; i < NT; ++i) acc[i][r] = _mm512_setzero_ps();
  }
  // Block b of every tile: its scales and quants `half` (0 or 1) into the pair at `at`.
  const auto block = [&](size_t at, int64_t b, size_t half) {
    __m512i corr[RX];
    __m512 xdv[RX];
    const int8_t* xb[RX];
    for (int r = 0; r < RX; ++r) {
      corr[r] = _mm512_set1_epi32(-(xs[r][b] << Q::kShift));
      xdv[r] = _mm512_set1_ps(xd[r][b]);
      xb[r] = xq[r] + 32 * b;
    }
#pragma GCC unroll 4
    for (int i = 0; i < NT; ++i) {
      const char* pair = t + i * ts + at;
      const __m512 wd = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(pair + 32 * half)));
      __m512i s0[RX], s1[RX];
      for (int r = 0; r < RX; ++r) {
        s0[r] = corr[r];
        s1[r] = _mm512_setzero_si512();
      }
      Q::template dots<RX>(pair + 64 + half * Q::kQuantBytes, xb, s0, s1);
      for (int r = 0; r < RX; ++r)
        acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0[r], s1[r])), _mm512_mul_ps(wd, xdv[r]),
                                    acc[i][r]);
    }
  };
  // The lines of `bytes` bytes from `at` in every tile, Ahead bytes on.
  const auto prefetch = [&](size_t at, size_t bytes) {
    if constexpr (Ahead > 0)
#pragma GCC unroll 4
      for (int i = 0; i < NT; ++i)
#pragma GCC unroll 17
        for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(t + i * ts + at + Ahead + o, _MM_HINT_T0);
  };
  int64_t b = b0;
  for (; b + 2 <= b1; b += 2) {
    const size_t at = static_cast<size_t>(b / 2) * kPair;
    prefetch(at, kPair);
    block(at, b, 0);
    block(at, b + 1, 1);
  }
  if (b < b1) {  // an odd last block, alone in its pair
    const size_t at = static_cast<size_t>(b / 2) * kPair;
    prefetch(at, 64 + Q::kQuantBytes);
    block(at, b, 0);
  }
  for (int i = 0; i < NT; ++i)
    for (int r = 0; r < RX; ++r) {
      float* yr = y + (r0 + r) * ys + i * kRepackRows;
      const __m512 v = overwrite ? acc[i][r] : _mm512_add_ps(_mm512_maskz_loadu_ps(rows[i], yr), acc[i][r]);
      _mm512_mask_storeu_ps(yr, rows[i], v);
    }
}

using TilesFn = void (*)(const char*, size_t, int64_t, int64_t, const QRows&, int64_t, float*, int64_t,
                         const __mmask16*, bool);

// Few activation rows (decode) stream every weight from memory once. With Prefetch::Software they
// read several tiles side by side, each a sequential stream, and prefetch each 2 KiB ahead: one
// stream alone, even prefetched, keeps too few lines in flight on Intel. NT tiles and RX rows at
// once, NT * RX <= 8: the sums stay in registers. With Prefetch::Hardware they read one tile
// after another (the OneTile functions), a single stream the hardware prefetcher follows.
constexpr size_t kAhead = 2048;

template <class Q>
struct Decode {
  static constexpr int kSide = 4;  // the most tiles side by side
  // [NT = 4, 2, 1][RX - 1]: the functions for RX = 1 .. kPackMinRows - 1 rows (null where NT * RX > 8)
  static constexpr TilesFn fns[3][7] = {
      {&tiles<Q, 4, 1, kAhead>, &tiles<Q, 4, 2, kAhead>, nullptr, nullptr, nullptr, nullptr, nullptr},
      {&tiles<Q, 2, 1, kAhead>, &tiles<Q, 2, 2, kAhead>, &tiles<Q, 2, 3, kAhead>, &tiles<Q, 2, 4, kAhead>, nullptr,
       nullptr, nullptr},
      {&tiles<Q, 1, 1, kAhead>, &tiles<Q, 1, 2, kAhead>, &tiles<Q, 1, 3, kAhead>, &tiles<Q, 1, 4, kAhead>,
       &tiles<Q, 1, 5, kAhead>, &tiles<Q, 1, 6, kAhead>, &tiles<Q, 1, 7, kAhead>}};
  static_assert(kPackMinRows == 8, "a decode function for every row count below kPackMinRows");
};

// One tile at a time, no prefetch, up to 8 rows a pass: for many rows (prefill; the remainder in one
// more pass) a chunk of the tile is read from memory once and then met by every pass from cache;
// for few rows with Prefetch::Hardware, the whole tile in one pass.
template <class Q>
struct OneTile {
  static constexpr TilesFn fns[8] = {&tiles<Q, 1, 1, 0>, &tiles<Q, 1, 2, 0>, &tiles<Q, 1, 3, 0>, &tiles<Q, 1, 4, 0>,
                                     &tiles<Q, 1, 5, 0>, &tiles<Q, 1, 6, 0>, &tiles<Q, 1, 7, 0>, &tiles<Q, 1, 8, 0>};
};


template <class Q>
void gemm(const GemmArgs& a) {
  if (a.m <= 0) return;
  const int64_t nb = a.k / 32;
  const char* w = static_cast<const char*>(a.w);
  const int64_t t0 = a.j0 / kRepackRows, t1 = (a.j1 + kRepackRows - 1) / kRepackRows;
  const auto lanes = [&](int64_t t) { return avx512::tile_lanes(a, t); };
  if (a.m < kPackMinRows && a.prefetch == Prefetch::Hardware) {
    // Few rows (decode), one sequential stream: each tile once, all its blocks, every row at once.
    for (int64_t t = t0; t < t1; ++t) {
      const __mmask16 mask = lanes(t);
      OneTile<Q>::fns[a.m - 1](w + t * a.w_stride, a.w_stride, 0, nb, *a.xq, 0, a.y + t * kRepackRows, a.y_stride,
                               &mask, !a.accumulate);
    }
    return;
  }
  if (a.m < kPackMinRows) {
    // Few rows (decode), prefetched: each tile once, all its blocks, every row at once, kSide
    // tiles side by side while there are that many, then fewer.
    int64_t t = t0;
    for (int level = 0, nt = Decode<Q>::kSide; level < 3; ++level, nt /= 2) {
      const TilesFn f = Decode<Q>::fns[level][a.m - 1];
      if (!f) continue;
      for (; t + nt <= t1; t += nt) {
        __mmask16 rows[Decode<Q>::kSide];
        for (int i = 0; i < nt; ++i) rows[i] = lanes(t + i);
        f(w + t * a.w_stride, a.w_stride, 0, nb, *a.xq, 0, a.y + t * kRepackRows, a.y_stride, rows, !a.accumulate);
      }
    }
    return;
  }
  // k-chunks outermost: a chunk of every activation row stays in cache while the tiles pass.
  for (int64_t b0 = 0; b0 < nb; b0 += avx512::kChunkBlocks) {
    const int64_t b1 = nb - b0 < avx512::kChunkBlocks ? nb : b0 + avx512::kChunkBlocks;
    const bool overwrite = b0 == 0 && !a.accumulate;
    for (int64_t t = t0; t < t1; ++t) {
      const char* tw = w + t * a.w_stride;
      float* y = a.y + t * kRepackRows;
      const __mmask16 mask = lanes(t);
      for (int64_t r = 0; r < a.m; r += 8) {
        const int64_t rx = a.m - r < 8 ? a.m - r : 8;
        OneTile<Q>::fns[rx - 1](tw, a.w_stride, b0, b1, *a.xq, r, y, a.y_stride, &mask, overwrite);
      }
    }
  }
}

}  // namespace

void avx512::gemm_q8_0(const GemmArgs& a) { gemm<Q8>(a); }
void avx512::gemm_q4_0(const GemmArgs& a) { gemm<Q4>(a); }

// ---------------------------------------------------------------------------------------------
// One query row against Q8_0 keys (a decode step over a q8_0 cache), in integers: the query
// rounded to 8 bits per block as round_q8_blocks does, a key's two blocks in one register of 64
// int8 offset to unsigned (+128), one vpdpbusd per 64 values, the offset taken back out by
// starting each sum at -128 sum q, and a lane's int32 sum scaled by its block's two scales. About
// a dozen instructions a key where the float kernel converts 64 int8 to floats: a decode step at
// depth is bound by the instructions between its loads, not by the bytes.

namespace {

template <int NZ>  // registers of 64 values: hd = 64 NZ
void qk_row_q8_0_int(const float* q, const RowRuns& k, float* s) {
  __m512i qz[NZ], start[NZ];
  __m512 qd[NZ];  // lanes 0-7: the first block's query scale, 8-15: the second's
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int z = 0; z < NZ; ++z) {
    __m128i bytes[4];
    float d[2];
    for (int b = 0; b < 2; ++b) {
      const __m512 x0 = _mm512_loadu_ps(q + 64 * z + 32 * b), x1 = _mm512_loadu_ps(q + 64 * z + 32 * b + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
      d[b] = amax / 127.0f;
      const __m512 dv = _mm512_set1_ps(d[b] > 0 ? d[b] : 1.0f);  // a zero block rounds to zeros
      bytes[2 * b] = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_div_ps(x0, dv)));
      bytes[2 * b + 1] = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_div_ps(x1, dv)));
    }
    qz[z] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(bytes[1], bytes[0])),
                               _mm256_set_m128i(bytes[3], bytes[2]), 1);
    start[z] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, qz[z]));
    qd[z] = _mm512_insertf32x8(_mm512_set1_ps(d[0]), _mm256_set1_ps(d[1]), 1);
  }
  // The scores of one key: sum over its lanes (hsum4 takes four keys at once).
  auto key = [&](const char* row) {
    __m512 acc = _mm512_setzero_ps();
    for (int z = 0; z < NZ; ++z) {
      const char* blk = row + 68 * z;  // blocks 2z and 2z + 1, 34 bytes each
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 36));
      const __m512i kz = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), offset);
      const __m512i dot = _mm512_dpbusd_epi32(start[z], kz, qz[z]);
      uint16_t d0, d1;
      std::memcpy(&d0, blk, 2);
      std::memcpy(&d1, blk + 34, 2);
      const __m512 dk = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(d0))),
                                                                _mm_set1_epi16(static_cast<short>(d1)), 1));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dk, qd[z]), acc);
    }
    return acc;
  };
  const size_t ks = k.stride;
  for (int32_t i = 0; i < k.n; s += k.len[i], ++i) {
    const char* r = k.first[i];
    const int64_t n = k.len[i];
    int64_t j = 0;
    for (; j + 4 <= n; j += 4, r += 4 * ks) V::hsum4(key(r), key(r + ks), key(r + 2 * ks), key(r + 3 * ks), s + j);
    if (j < n) {  // the same sum tree as four: a key's score whatever its place in the run
      const __m512 z = _mm512_setzero_ps();
      float last[4];
      V::hsum4(key(r), n - j > 1 ? key(r + ks) : z, n - j > 2 ? key(r + 2 * ks) : z, z, last);
      std::copy(last, last + (n - j), s + j);
    }
  }
}

}  // namespace

void avx512::qk_row_q8_0(const float* q, const RowRuns& k, int64_t hd, float* s) {
  switch (hd) {
    case 64: return qk_row_q8_0_int<1>(q, k, s);
    case 128: return qk_row_q8_0_int<2>(q, k, s);
    case 192: return qk_row_q8_0_int<3>(q, k, s);
    case 256: return qk_row_q8_0_int<4>(q, k, s);
    default: return generic::qk_row<V, generic::LoadQ8<V>>(q, k, hd, s);
  }
}

}  // namespace semline::cpu
