// Weight matrices of the cpu stages and the dispatch of linear maps over the worker pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <semline/stage.h>

#include "backend/cpu_backend.h"
#include "stations/stations.h"
#include "kernels/kernels.h"

namespace semline::cpu {

// An affine map y = W x + b: n_in -> n_out, W stored [n_out][n_in] in the file's dtype, b
// optional. Where the backend's kernels read a layout of their own (Kernels::repacked: Q8_0 and
// Q4_0 under AVX-512), W is repacked once, when bound, into memory of the backend owned here, and
// the view of the file's rows is dropped: nothing reads them through the map again. They are
// clean pages of the read-only file mapping (one reading of them at bind), so the kernel
// reclaims them under memory pressure without writing anything back, and nothing faults them in
// again (the embedding of a tied head reads token_embd through a view of its own, row by row).
struct Linear {
  DType dtype = DType::F32;
  int64_t n_in = 0, n_out = 0;
  const char* data = nullptr;  // the file's rows (a host view); null once repacked
  size_t row_stride = 0;       // bytes between them
  std::unique_ptr<Buffer> repacked;  // W in the kernels' layout (kernels/repack.h), or null
  size_t tile_stride = 0;            // bytes between its tiles
  std::vector<float> bias;           // [n_out], empty when the map has none

  // A map over rows already in memory (n_out rows of n_in values, row_stride bytes apart, kept
  // alive by the caller while the map is a view of them), repacked for be's kernels.
  static Linear over(CpuBackend& be, DType dtype, int64_t n_in, int64_t n_out, const char* data, size_t row_stride);
  bool quantized() const { return takes_quantized_input(dtype); }
  double bytes() const {
    return static_cast<double>(dtype_row_bytes(dtype, n_in)) * n_out + 4.0 * static_cast<double>(bias.size());
  }
};

// Activation rows handed to a linear map: float rows, and their 8-bit quantisation when a
// block-quantised weight reads them.
struct Rows {
  const float* x = nullptr;
  int64_t stride = 0;  // floats between rows
  const QRows* q = nullptr;
};

// y = W x (+ b), or y += W x (+ b) when accumulating.
struct MatOp {
  const Linear* w;
  Rows in;
  float* y;
  int64_t y_stride;
  bool accumulate;
};

// Runs 1 to 3 ops (each over all m rows) side by side in one dispatch, split over weight rows.
void run_matmuls(CpuBackend& be, const MatOp* ops, int n_ops, int64_t m);

// Runs 1 or 2 ops of the same n_out in one dispatch; after they have produced columns [j0, j1)
// of all m rows, epilogue(j0, j1) runs on the same thread. j0 is a multiple of 32, and so is j1
// unless it is n_out.
template <class F>
void run_matmuls_then(CpuBackend& be, const MatOp* ops, int n_ops, int64_t m, F&& epilogue);

// Quantises m rows of k floats (k a multiple of 32) into q, over the pool when there are many.
void quantize_rows(CpuBackend& be, const float* x, int64_t stride, int64_t m, int64_t k, const QRows& q);

// QRows laid out for up to `rows` rows of k values inside a scratch area.
struct QRowsLayout {
  size_t q = 0, d = 0, s = 0;
  int64_t k = 0;
  void plan(ScratchLayout& layout, int64_t rows, int64_t k);
  QRows at(char* base) const;
};

// ---------------------------------------------------------------------------------------------

void matmul_range(const Kernels& kern, const MatOp& op, int64_t m, int64_t j0, int64_t j1);
int64_t matmul_chunk_rows(const CpuBackend& be, int64_t total_rows);

template <class F>
void run_matmuls_then(CpuBackend& be, const MatOp* ops, int n_ops, int64_t m, F&& epilogue) {
  const int64_t n = ops[0].w->n_out;
  const int64_t rows = matmul_chunk_rows(be, n_ops * n);
  const Kernels& kern = be.kernels();
  be.pool().run((n + rows - 1) / rows, 1, [&](int64_t c0, int64_t c1, int) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t j0 = c * rows, j1 = j0 + rows < n ? j0 + rows : n;
      for (int i = 0; i < n_ops; ++i) matmul_range(kern, ops[i], m, j0, j1);
      epilogue(j0, j1);
    }
  });
}

}  // namespace semline::cpu
