// AVX-512 + VNNI linear maps over Q8_0 and Q4_0 weights: register tiles that read the blocks in
// place (few activation rows: decode), and repacked weight tiles (many rows: prefill).
#include "kernels/avx512_gemm.h"
#include "kernels/avx512_vec.h"

namespace semline::cpu {
namespace {

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
  // The scales of blocks b..b+3 (half words 0, 17, 34, 51 of the 136 bytes).
  static __m128 scales4(const char* b) {
    const __m512i lo = _mm512_loadu_si512(b), hi = _mm512_loadu_si512(b + 64);
    const __m512i h = _mm512_permutex2var_epi16(lo, _mm512_setr_epi32(17 << 16, (51 << 16) | 34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), hi);
    return _mm_cvtph_ps(_mm512_castsi512_si128(h));
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
  // The scales of blocks b..b+3 (half words 0, 9, 18, 27 of the 72 bytes).
  static __m128 scales4(const char* b) {
    const __m512i h = _mm512_permutexvar_epi16(_mm512_setr_epi32(9 << 16, (27 << 16) | 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                                               _mm512_loadu_si512(b));
    return _mm_cvtph_ps(_mm512_castsi512_si128(h));
  }
};

inline float half(const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

template <class Q>
struct QTiles {
  static constexpr int kTileRows = 4, kTileCols = 4, kMatvecRows = 8;

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
    if constexpr (RX <= 2) {
      // Four blocks a step for few activation rows (decode): the four weight scales come from one
      // permute, and each pair's scale vector from one more.
      const __m512i pair2 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
      for (; b + 4 <= nb; b += 4) {
        __m512i xv0[RX], xv1[RX], c0[RX], c1[RX];
        __m128 xd4[RX];
        for (int r = 0; r < RX; ++r) {
          xv0[r] = _mm512_loadu_si512(xq[r] + 32 * b);
          xv1[r] = _mm512_loadu_si512(xq[r] + 32 * b + 64);
          const __m128i s4 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[r] + b));
          const __m512i c = _mm512_castsi128_si512(_mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s4, Q::kShift)));
          c0[r] = _mm512_maskz_permutexvar_epi32(0x0101, pair, c);  // each block's correction in its first lane
          c1[r] = _mm512_maskz_permutexvar_epi32(0x0101, pair2, c);
          xd4[r] = _mm_loadu_ps(xd[r] + b);
        }
        for (int j = 0; j < RW; ++j) {
          const char* blk = w + j * ws + b * Q::kBytes;
          _mm_prefetch(blk + 2 * RW * ws, _MM_HINT_T0);
          _mm_prefetch(blk + 2 * RW * ws + 64, _MM_HINT_T0);
          const __m128 wd4 = Q::scales4(blk);
          const __m512i wq0 = Q::quants2(blk), wq1 = Q::quants2(blk + 2 * Q::kBytes);
          for (int r = 0; r < RX; ++r) {
            const __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(wd4, xd4[r]));
            const __m512i p0 = _mm512_dpbusd_epi32(c0[r], wq0, xv0[r]);
            const __m512i p1 = _mm512_dpbusd_epi32(c1[r], wq1, xv1[r]);
            acc[j][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(pair, sc), acc[j][r]);
            acc[j][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(pair2, sc), acc[j][r]);
          }
        }
      }
    }
    for (; b + 2 <= nb; b += 2) {
      __m512i xv[RX], corr[RX];
      __m512 xdv[RX];
      for (int r = 0; r < RX; ++r) {
        xv[r] = _mm512_loadu_si512(xq[r] + 32 * b);
        xdv[r] = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(xd[r] + b)))));
        __m512i s = _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(xs[r] + b)));
        s = _mm512_maskz_permutexvar_epi32(0x0101, pair, s);  // each block's sum in its first lane
        corr[r] = _mm512_sub_epi32(zero, _mm512_slli_epi32(s, Q::kShift));
      }
      for (int j = 0; j < RW; ++j) {
        const char* blk = w + j * ws + b * Q::kBytes;
        // The same place in the next tile's rows: the hardware prefetcher alone keeps too few
        // lines in flight for these short blocks to stream at memory bandwidth.
        _mm_prefetch(blk + 2 * RW * ws, _MM_HINT_T0);
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

// ---------------------------------------------------------------------------------------------
// Many activation rows (prefill): 16 weight rows at a time are repacked so that 32-bit lane l of
// a register holds 4 consecutive weights of row l. One vpdpbusd with 4 activation values
// broadcast to all lanes then serves 16 rows, each lane holds a whole row's block sum (no
// horizontal sums), and the packing cost is shared by every activation row.

constexpr int64_t kPackBlocks = 32;  // blocks per k-chunk: packed weights stay in L1

struct Packed {
  alignas(64) uint8_t q[kPackBlocks][8][64];  // [block][4-weight group g][row l: 4 bytes], unsigned
  alignas(64) float d[kPackBlocks][16];       // [block][row l] scales
};

inline int32_t load32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Rows [0, 16) masked by `rows`, blocks [b0, b0 + nbc) of a weight tile starting at w.
template <class Q>
void pack(const char* w, __m512i offsets, __mmask16 rows, int64_t b0, int64_t nbc, Packed& p) {
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t b = 0; b < nbc; ++b) {
    const char* base = w + (b0 + b) * static_cast<int64_t>(Q::kBytes);
    const __m512i h = _mm512_mask_i32gather_epi32(zero, rows, offsets, base, 1);
    _mm512_store_ps(p.d[b], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));  // the low half of each dword
    if constexpr (Q::kShift == 7) {
      for (int g = 0; g < 8; ++g) {
        const __m512i v = _mm512_mask_i32gather_epi32(zero, rows, offsets, base + 2 + 4 * g, 1);
        _mm512_store_si512(p.q[b][g], _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80))));
      }
    } else {
      const __m512i nib = _mm512_set1_epi8(0x0f);
      for (int g = 0; g < 4; ++g) {
        const __m512i v = _mm512_mask_i32gather_epi32(zero, rows, offsets, base + 2 + 4 * g, 1);
        _mm512_store_si512(p.q[b][g], _mm512_and_si512(v, nib));
        _mm512_store_si512(p.q[b][g + 4], _mm512_and_si512(_mm512_srli_epi32(v, 4), nib));
      }
    }
  }
}

// y[r][0..16) (+)= packed rows . x rows r0..r0+RX over the packed blocks.
template <int RX>
void packed_tile(const Packed& p, int64_t nbc, const QRows& x, int64_t r0, int64_t b0, int shift, float* y,
                 int64_t ys, __mmask16 rows, bool overwrite) {
  const int8_t* xq[RX];
  const float* xd[RX];
  const int32_t* xs[RX];
  __m512 acc[RX];
  for (int r = 0; r < RX; ++r) {
    xq[r] = x.q + (r0 + r) * x.q_stride + 32 * b0;
    xd[r] = x.d + (r0 + r) * x.b_stride + b0;
    xs[r] = x.s + (r0 + r) * x.b_stride + b0;
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nbc; ++b) {
    // Two integer sums per row keep enough independent vpdpbusd chains in flight.
    __m512i s0[RX], s1[RX];
    for (int r = 0; r < RX; ++r) {
      s0[r] = _mm512_set1_epi32(-(xs[r][b] << shift));
      s1[r] = _mm512_setzero_si512();
    }
    for (int g = 0; g < 8; g += 2) {
      const __m512i w0 = _mm512_load_si512(p.q[b][g]), w1 = _mm512_load_si512(p.q[b][g + 1]);
      for (int r = 0; r < RX; ++r) {
        s0[r] = _mm512_dpbusd_epi32(s0[r], w0, _mm512_set1_epi32(load32(xq[r] + 32 * b + 4 * g)));
        s1[r] = _mm512_dpbusd_epi32(s1[r], w1, _mm512_set1_epi32(load32(xq[r] + 32 * b + 4 * g + 4)));
      }
    }
    const __m512 wd = _mm512_load_ps(p.d[b]);
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

template <class Q>
void gemm_packed(const GemmArgs& a) {
  Packed p;
  const int64_t nb = a.k / 32;
  const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int32_t>(a.w_stride)));
  const char* w = static_cast<const char*>(a.w);
  // k-chunks outermost: a chunk of every activation row stays in cache while all the weight
  // tiles pass; the partial sums go through y.
  for (int64_t b0 = 0; b0 < nb; b0 += kPackBlocks) {
    const int64_t nbc = nb - b0 < kPackBlocks ? nb - b0 : kPackBlocks;
    const bool overwrite = b0 == 0 && !a.accumulate;
    for (int64_t j = a.j0; j < a.j1; j += 16) {
      const int64_t rows = a.j1 - j < 16 ? a.j1 - j : 16;
      const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
      pack<Q>(w + j * a.w_stride, offsets, mask, b0, nbc, p);
      float* y = a.y + j;
      int64_t r = 0;
      for (; r + 8 <= a.m; r += 8) packed_tile<8>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite);
      switch (a.m - r) {
        case 7: packed_tile<7>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        case 6: packed_tile<6>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        case 5: packed_tile<5>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        case 4: packed_tile<4>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        case 3: packed_tile<3>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        case 2: packed_tile<2>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        case 1: packed_tile<1>(p, nbc, *a.xq, r, b0, Q::kShift, y, a.y_stride, mask, overwrite); break;
        default: break;
      }
    }
  }
}

template <class Q>
void gemm_q(const GemmArgs& a) {
  if (a.m >= kPackMinRows) gemm_packed<Q>(a);
  else generic::gemm_quant<QTiles<Q>>(a);
}

}  // namespace

void avx512::gemm_q8_0(const GemmArgs& a) { gemm_q<Q8>(a); }
void avx512::gemm_q4_0(const GemmArgs& a) { gemm_q<Q4>(a); }

}  // namespace semline::cpu
