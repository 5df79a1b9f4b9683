// CPU kernels: one table of function pointers per instruction set, chosen once when a backend is
// created. Each table lives in its own translation unit compiled with that instruction set's
// flags; nothing in these files runs before a table is asked for, so loading the plugin executes
// no ISA-specific code.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <semline/model.h>
#include <semline/tensor.h>

namespace semline::cpu {

enum class Isa : int {
  Scalar = 0,  // portable C++, any x86-64 (or other) CPU
  Avx2 = 1,    // AVX2 + FMA + F16C
  Avx512 = 2,  // AVX-512 F/BW/VL/DQ + VNNI
  Amx = 3,     // AVX-512 + AMX-INT8 tiles for the quantised linear maps over many rows
};
inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Amx};

// Rows of a cache met one after another, lying in runs: run i is len[i] rows `stride` bytes apart
// from first[i] (one kv head's rows in the cache's blocks, a run of consecutive blocks as one).
// A kernel takes a tile's runs in one call, so a cache of small blocks costs no call per block.
struct RowRuns {
  const char* const* first;
  const int32_t* len;
  int32_t n;
  size_t stride;
};

// How a linear map with few activation rows (decode) streams its weights from memory, where the
// two CPU families we measured want opposite things (docs/benchmarks.md):
//   Software: several rows (or repacked tiles) side by side, each prefetched ahead in software;
//             on Intel Xeon one stream alone keeps too few lines in flight.
//   Hardware: one row (tile) after another in memory order, one sequential stream per thread left
//             to the hardware prefetcher; on AMD EPYC the software prefetches and extra streams
//             compete with it and cost 9% (F32) to 40% (Q4_0) of decode speed.
enum class Prefetch : int { Software = 0, Hardware = 1 };
const char* prefetch_name(Prefetch p);                       // "software", "hardware"
std::optional<Prefetch> prefetch_from_name(std::string_view name);
Prefetch default_prefetch();  // Hardware on AMD CPUs, Software elsewhere

const char* isa_name(Isa isa);                       // "scalar", "avx2", "avx512", "amx"
std::optional<Isa> isa_from_name(std::string_view name);
bool isa_supported(Isa isa);                         // can this machine run it?
Isa best_isa();                                      // the most capable supported one

// Block-quantised weights take QRows activations; the others take float rows.
constexpr bool takes_quantized_input(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

// Activation rows quantised to 8 bits in blocks of 32 (the Q8_0 rule with the scale kept as a
// float): block b of row r holds q[i] = round(x[i] / d), d = max|x| / 127, and s = sum of its q.
struct QRows {
  int8_t* q = nullptr;   // [rows][q_stride]
  float* d = nullptr;    // [rows][b_stride]
  int32_t* s = nullptr;  // [rows][b_stride]
  int64_t q_stride = 0;  // elements per row (>= k)
  int64_t b_stride = 0;  // blocks per row (>= k / 32)
};

// One linear map over a range of weight rows:
//   y[r][j] = (accumulate ? y[r][j] : 0) + sum_i W[j][i] * x[r][i]   for r < m, j0 <= j < j1.
// W rows are w_stride bytes apart, in the file's layout; where the kernels read W repacked
// (Kernels::repacked), w is its first tile and w_stride the bytes of a tile (kernels/repack.h).
// Float-weight kernels (F32, F16, BF16) read x; the block-quantised ones (Q8_0, Q4_0) read xq,
// whose k must be a multiple of 32.
struct GemmArgs {
  const void* w = nullptr;
  size_t w_stride = 0;
  const float* x = nullptr;  // [m][x_stride]
  int64_t x_stride = 0;
  const QRows* xq = nullptr;
  int64_t m = 0, k = 0;
  int64_t j0 = 0, j1 = 0;
  float* y = nullptr;  // [m][y_stride]
  int64_t y_stride = 0;
  bool accumulate = false;
  Prefetch prefetch = Prefetch::Software;  // how few rows stream the weights (see Prefetch)
};
using GemmFn = void (*)(const GemmArgs&);

struct Kernels {
  Isa isa;
  // Set by the backend that holds a copy of the table; passed to the linear maps in GemmArgs.
  Prefetch prefetch = Prefetch::Software;
  GemmFn gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0;
  // gemm_q8_0 and gemm_q4_0 read their weights repacked (kernels/repack.h), not in the file's
  // blocks: the AVX-512 ones do.
  bool repacked_quant;

  // x[n] -> q, d, s (n a multiple of 32); see QRows.
  void (*quantize_q8)(const float* x, int64_t n, int8_t* q, float* d, int32_t* s);
  // y = x / sqrt(mean(x^2) + eps) * w
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // y = (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * w + b   (LayerNorm)
  void (*layer_norm)(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);
  // Rotates the first rope_dim dims of n_heads heads (head h at x + h * head_stride) by the
  // angles whose cosines and sines are cs[2i], cs[2i+1], i < rope_dim / 2.
  void (*rope)(float* x, int64_t n_heads, int64_t head_stride, int64_t rope_dim, const float* cs,
               RopeType type);
  void (*softmax)(float* x, int64_t n);                                 // in place
  void (*silu_mul)(const float* g, const float* u, float* y, int64_t n);  // y = silu(g) * u
  // y = x Phi(x), Phi the normal CDF (exact GELU, by erfc); y may be x.
  void (*gelu)(const float* x, float* y, int64_t n);
  // y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GELU's tanh approximation); y may be x.
  void (*gelu_tanh)(const float* x, float* y, int64_t n);
  void (*add)(const float* x, float* y, int64_t n);                      // y += x
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_f16)(const uint16_t* a, const float* b, int64_t n);
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);     // y += a * x
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
  void (*scale)(float* y, float a, int64_t n);                          // y *= a
  float (*max)(const float* x, int64_t n);                              // n >= 1
  float (*exp_sum)(float* x, int64_t n, float m);  // x = exp(x - m), returns the sum
  void (*to_f16)(const float* x, uint16_t* y, int64_t n);
  // One row of n elements of any weight dtype to float (n a multiple of the block size).
  void (*dequantize_row)(DType t, const void* src, float* y, int64_t n);
  // o[r][:hd] += sum_{j < nv[r]} p[r][j] * v_j for r < rows; v_j the j-th row of v's runs, F32
  // (pv_f32) or F16 (pv_f16). Rows of p are p_stride floats apart, rows of o o_stride floats.
  // Each output row's sum runs in j's order, one row at a time or several: the same floats.
  using PvFn = void (*)(const float* p, int64_t p_stride, const int32_t* nv, int64_t rows, const RowRuns& v,
                        int64_t hd, float* o, int64_t o_stride);
  PvFn pv_f32, pv_f16;

  // s[j] = q . k_j for every row k_j of k's runs, in order: one query row against keys (F32, F16
  // or Q8_0 rows of hd values), the decode step of attention whose query heads share no kv head.
  // A key's score is the same wherever it lies in its run (so however the cache's blocks lie: a
  // sequence alone or among others gets the same floats). Against
  // Q8_0 keys the query is first rounded as round_q8_blocks does (ggml's vec_dot_q8_0_q8_0 meets
  // such a cache with an 8-bit query too), so the products can be integer ones: a query rounded so
  // already comes through unchanged.
  using QkRowFn = void (*)(const float* q, const RowRuns& k, int64_t hd, float* s);
  QkRowFn qk_row_f32, qk_row_f16, qk_row_q8_0;
  QkRowFn qk_row(DType t) const { return t == DType::Q8_0 ? qk_row_q8_0 : t == DType::F16 ? qk_row_f16 : qk_row_f32; }

  // A KV cache of Q8_0 rows in the file's blocks (an F16 scale, 32 int8), read as floats as they
  // stream by: the linear map over such rows (x float; j1 - j0 rows of k values), the dot and axpy
  // of one row, and pv over them. to_q8_0 writes a row (n a multiple of 32) as ggml's
  // quantize_row_q8_0 does: d = max|x| / 127, q = round(x / d), d stored in F16.
  GemmFn gemm_q8_0_rows;
  float (*dot_q8_0)(const void* a, const float* b, int64_t n);
  void (*axpy_q8_0)(float a, const void* x, float* y, int64_t n);
  PvFn pv_q8_0;
  void (*to_q8_0)(const float* x, void* y, int64_t n);

  // Whether gemm(t) reads weights of dtype t repacked.
  bool repacked(DType t) const { return repacked_quant && takes_quantized_input(t); }

  GemmFn gemm(DType t) const {
    switch (t) {
      case DType::F32: return gemm_f32;
      case DType::F16: return gemm_f16;
      case DType::BF16: return gemm_bf16;
      case DType::Q8_0: return gemm_q8_0;
      case DType::Q4_0: return gemm_q4_0;
    }
    return nullptr;
  }
};

// The table of an instruction set; isa_supported(isa) must hold before any of it is called.
const Kernels& kernels_for(Isa isa);

// Each block of 32 values of x (n a multiple of 32) to d * m: d = max |x| / 127 and m = x / d
// rounded to the nearest integer (ties to even), so |m| <= 127 — the 8 bits a query has where it
// meets a Q8_0 cache's keys (qk_row). Every kernel rounds so, to the same d and m.
inline void round_q8_blocks(float* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 32) {
    float amax = 0;
    for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    for (int64_t i = b; i < b + 32; ++i) x[i] = d > 0 ? d * std::nearbyint(x[i] / d) : 0.0f;
  }
}

}  // namespace semline::cpu
