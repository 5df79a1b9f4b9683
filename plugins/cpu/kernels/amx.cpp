// The AMX table: the AVX-512 table, with the block-quantised linear maps for many activation rows
// (a batch of decodes, a prompt) on the AMX-INT8 tile unit. This file is compiled with the
// AVX-512 flags and AMX's; nothing in it runs before isa_supported(Isa::Amx) held, which also
// asked the kernel for the tile state.
//
// One 16 x 32 tile of activations (16 rows, one block) times one block of 16 repacked weight rows
// (kernels/repack.h) is one tile product into a 16 x 16 tile of int32 sums: each sum is a whole
// block's dot product, so, as in the AVX-512 kernels, a block's scales are applied once per
// (activation row, 16 weight rows) with one conversion, one multiply and one FMA, and in the same
// order: both give the same floats. The repacked groups are already the tile unit's B layout
// (4 consecutive k of one output row per 32-bit lane): Q8_0's are read in place, Q4_0's nibbles
// unpacked once per call. The tile unit does the products (8 vpdpbusd per row and block on
// AVX-512) while the AVX-512 units scale the block before; what bounds it is that scaling and the
// tile stores of the int32 sums (1 KiB per block and 16 x 16 outputs), so 16 to 128 rows run
// 1.3-1.7x the AVX-512 kernels' rate (docs/benchmarks.md). Fewer rows stay on the AVX-512
// kernels.
#include <immintrin.h>

#include <memory>
#include <new>

#include "kernels/avx512_gemm.h"
#include "kernels/avx512_vec.h"  // GCC 12's AVX-512 intrinsics' warnings, silenced there
#include "kernels/repack.h"
#include "kernels/tables.h"

namespace semline::cpu {
namespace {

// The tile registers: block b's sums in tmm(b % 2), its activations in tmm(2 + b % 2), its
// weights in tmm(4 + b % 2), so that block b + 1's products run while block b's sums are scaled.
struct alignas(64) TileConfig {  // LDTILECFG's 64-byte operand (palette 1)
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// n activation rows (1..16) per pass.
TileConfig config_for(int n) {
  TileConfig c;
  for (int t : {0, 1}) c.rows[t] = static_cast<uint8_t>(n), c.colsb[t] = 64;  // C: n x 16 int32
  for (int t : {2, 3}) c.rows[t] = static_cast<uint8_t>(n), c.colsb[t] = 32;  // A: n x 32 int8
  for (int t : {4, 5}) c.rows[t] = 8, c.colsb[t] = 64;                         // B: 8 x (16 x 4) int8
  return c;
}

// Where block b's weights are as the tile unit's B operand (8 rows of 64 bytes, row g holding
// weights 4g..4g+3 of each of the 16 rows), and how their sums become the exact dot products.
struct Q8 {
  static constexpr size_t kQuantBytes = 512;
  static constexpr bool kUnpacks = false;
  // The repacked groups are that layout already, unsigned (w + 128): read in place, multiplied
  // as unsigned (tdpbsud), and 128 times the activation's block sum taken back out.
  static constexpr int kShift = 7;
  static const void* b_tile(const char* quants, const int8_t*, int64_t) { return quants; }
};

struct Q4 {
  static constexpr size_t kQuantBytes = 256;
  static constexpr bool kUnpacks = true;
  // Nibbles unpacked once per tile into signed weights (q - 8), multiplied as signed (tdpbssd):
  // the sums need no correction, which saves the scaling loop an instruction per row.
  static constexpr int kShift = 0;
  static const void* b_tile(const char*, const int8_t* unpacked, int64_t b) { return unpacked + 512 * b; }
  // The low nibbles of group g are weights 4g..4g+3 (row g), the high ones 16 further (row 4 + g).
  static void unpack(const char* q, int8_t* b) {
    const __m512i nib = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    for (int g = 0; g < 4; ++g) {
      const __m512i v = _mm512_load_si512(q + 64 * g);
      _mm512_store_si512(b + 64 * g, _mm512_sub_epi8(_mm512_and_si512(v, nib), eight));
      _mm512_store_si512(b + 64 * (4 + g), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), nib), eight));
    }
  }
};

// Block b of a repacked tile (kernels/repack.h): its pair, its 16 F16 scales and its quants.
template <class Q>
const char* pair_of(const char* w, int64_t b) {
  return w + static_cast<size_t>(b / 2) * (64 + 2 * Q::kQuantBytes);
}
template <class Q>
const char* scales_of(const char* w, int64_t b) {
  return pair_of<Q>(w, b) + 32 * (b % 2);
}
template <class Q>
const char* quants_of(const char* w, int64_t b) {
  return pair_of<Q>(w, b) + 64 + (b % 2) * Q::kQuantBytes;
}

// Q4_0's B tiles of one repacked tile, every block's (512 bytes each), made once per tile and read
// by every pass from cache: a tile load right after the vector stores that wrote its bytes would
// wait for them to reach the cache.
template <class Q>
void unpack_tiles(const char* w, int64_t nb, int8_t* bt) {
  for (int64_t b = 0; b < nb; ++b) Q::unpack(quants_of<Q>(w, b), bt + 512 * b);
}

// Block b's products into tmm(b % 2), stored to c[b % 2].
template <class Q>
void block_products(const int8_t* xq, int stride, const char* w, const int8_t* bt, int64_t b, int32_t (*c)[256]) {
  const void* wb = Q::b_tile(quants_of<Q>(w, b), bt, b);
  constexpr bool kUnsigned = Q::kShift > 0;
  if (b % 2 == 0) {  // GCC's tile intrinsics take literal registers
    _tile_loadd(2, xq + 32 * b, stride);
    _tile_loadd(4, wb, 64);
    _tile_zero(0);
    if constexpr (kUnsigned) _tile_dpbsud(0, 2, 4);
    else _tile_dpbssd(0, 2, 4);
    _tile_stored(0, c[0], 64);
  } else {
    _tile_loadd(3, xq + 32 * b, stride);
    _tile_loadd(5, wb, 64);
    _tile_zero(1);
    if constexpr (kUnsigned) _tile_dpbsud(1, 3, 5);
    else _tile_dpbssd(1, 3, 5);
    _tile_stored(1, c[1], 64);
  }
}

// y[r0 + r][16 t .. 16 t + 16) (+)= the repacked tile at w (Q4_0: its B tiles at bt) . x row
// r0 + r, for r < n (1..16), over all nb blocks; lanes outside `lanes` are neither read nor
// written. The tile configuration for n rows is loaded. Block b's sums are scaled after block
// b + 1's products are issued. The floats are those of the AVX-512 kernel's many-rows path, op
// for op: each block's whole integer sum (the offset taken out), converted, times (weight scale x
// activation scale),
// added in block order, and each k-chunk's sum added to y.
template <class Q>
void pass(const char* w, const int8_t* bt, int64_t nb, const QRows& x, int64_t r0, int n, float* y, int64_t ys,
          __mmask16 lanes, bool overwrite) {
  const int8_t* xq = x.q + r0 * x.q_stride;
  const float* xd = x.d + r0 * x.b_stride;
  const int32_t* xs = x.s + r0 * x.b_stride;
  const int stride = static_cast<int>(x.q_stride);
  alignas(64) int32_t c[2][256];
  for (int64_t b0 = 0; b0 < nb; b0 += avx512::kChunkBlocks) {
    const int64_t b1 = nb - b0 < avx512::kChunkBlocks ? nb : b0 + avx512::kChunkBlocks;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    block_products<Q>(xq, stride, w, bt, b0, c);
    for (int64_t b = b0 + 1; b <= b1; ++b) {
      if (b < b1) block_products<Q>(xq, stride, w, bt, b, c);
      const int64_t p = b - 1;  // the block whose sums are scaled now
      const int32_t* cp = c[p % 2];
      const __m512 wd = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales_of<Q>(w, p))));
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r)
        if (r < n) {
          __m512i dot = _mm512_load_si512(cp + 16 * r);
          if constexpr (Q::kShift > 0) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(xs[r * x.b_stride + p] << Q::kShift));
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd, _mm512_set1_ps(xd[r * x.b_stride + p])),
                                   acc[r]);
        }
    }
    const bool first = b0 == 0 && overwrite;
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r)
      if (r < n) {
        float* yr = y + (r0 + r) * ys;
        const __m512 v = first ? acc[r] : _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, yr), acc[r]);
        _mm512_mask_storeu_ps(yr, lanes, v);
      }
  }
}

// A thread's buffer for unpack_tiles, grown to the largest k it has met.
int8_t* tile_buffer(int64_t nb) {
  struct Free {
    void operator()(int8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  thread_local std::unique_ptr<int8_t[], Free> buf;
  thread_local int64_t blocks = 0;
  if (nb > blocks) {
    buf.reset(static_cast<int8_t*>(::operator new[](static_cast<size_t>(nb) * 512, std::align_val_t{64})));
    blocks = nb;
  }
  return buf.get();
}

// Below 16 activation rows a pass leaves the tile unit half idle while each weight tile is still
// read and (Q4_0) unpacked whole: the AVX-512 kernels are as fast at 8 rows and faster for Q4_0
// (semline-cpu-bench --m 8: 0.45 vs 0.60 ms on a Q4_0 8192 x 2048), the tiles 1.3x faster at 16.
constexpr int64_t kTileMinRows = 16;

template <class Q>
void gemm(const GemmArgs& a, GemmFn avx512_gemm) {
  if (a.m < kTileMinRows) return avx512_gemm(a);
  const int64_t nb = a.k / 32;
  const char* w = static_cast<const char*>(a.w);
  const int64_t t0 = a.j0 / kRepackRows, t1 = (a.j1 + kRepackRows - 1) / kRepackRows;
  const int64_t rem = a.m % 16;
  const TileConfig full = config_for(16), last = config_for(rem == 0 ? 16 : static_cast<int>(rem));
  int loaded = 0;  // the rows of the configuration loaded
  int8_t* bt = Q::kUnpacks ? tile_buffer(nb) : nullptr;
  // Each weight tile is read from memory once, then met by every pass from cache.
  for (int64_t t = t0; t < t1; ++t) {
    if constexpr (Q::kUnpacks) unpack_tiles<Q>(w + t * a.w_stride, nb, bt);
    const __mmask16 lanes = avx512::tile_lanes(a, t);
    for (int64_t r = 0; r < a.m; r += 16) {
      const int n = a.m - r < 16 ? static_cast<int>(a.m - r) : 16;
      if (n != loaded) _tile_loadconfig(n == 16 ? &full : &last);
      loaded = n;
      pass<Q>(w + t * a.w_stride, bt, nb, *a.xq, r, n, a.y + t * kRepackRows, a.y_stride, lanes, !a.accumulate);
    }
  }
  _tile_release();
}

void gemm_q8_0(const GemmArgs& a) { gemm<Q8>(a, &avx512::gemm_q8_0); }
void gemm_q4_0(const GemmArgs& a) { gemm<Q4>(a, &avx512::gemm_q4_0); }

Kernels make_table() {
  Kernels k = kernels_avx512();
  k.isa = Isa::Amx;
  k.gemm_q8_0 = &gemm_q8_0;
  k.gemm_q4_0 = &gemm_q4_0;
  return k;
}

}  // namespace

const Kernels& kernels_amx() {
  static const Kernels table = make_table();
  return table;
}

}  // namespace semline::cpu
