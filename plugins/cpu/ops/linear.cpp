#include "ops/linear.h"

#include <algorithm>
#include <cstring>

#include <semline/error.h>

#include "kernels/repack.h"

namespace semline::cpu {

Linear Linear::over(CpuBackend& be, DType dtype, int64_t n_in, int64_t n_out, const char* data, size_t row_stride) {
  Linear l;
  l.dtype = dtype;
  l.n_in = n_in;
  l.n_out = n_out;
  l.data = data;
  l.row_stride = row_stride;
  if (!be.kernels().repacked(dtype)) return l;
  const int64_t tiles = (n_out + kRepackRows - 1) / kRepackRows;
  l.tile_stride = repacked_tile_bytes(dtype, n_in);
  l.repacked = be.alloc(static_cast<size_t>(tiles) * l.tile_stride);
  char* dst = static_cast<char*>(l.repacked->host());
  // Chunks of ~256 KiB of tiles: few enough dispatches, and both threads fault in the file's
  // pages and the new ones side by side.
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>((size_t{256} << 10) / std::max<size_t>(l.tile_stride, 1)));
  be.pool().run(tiles, grain, [&](int64_t t0, int64_t t1, int) {
    repack_tiles(dtype, data, row_stride, n_out, n_in, t0, t1, dst);
  });
  l.data = nullptr;
  l.row_stride = 0;
  return l;
}

void matmul_range(const Kernels& kern, const MatOp& op, int64_t m, int64_t j0, int64_t j1) {
  const std::vector<float>& bias = op.w->bias;
  if (!bias.empty())  // the bias first, then the product accumulates onto it
    for (int64_t r = 0; r < m; ++r) {
      float* y = op.y + r * op.y_stride;
      if (op.accumulate) kern.add(bias.data() + j0, y + j0, j1 - j0);
      else std::memcpy(y + j0, bias.data() + j0, static_cast<size_t>(j1 - j0) * 4);
    }
  GemmArgs a;
  a.w = op.w->repacked ? op.w->repacked->host() : op.w->data;
  a.w_stride = op.w->repacked ? op.w->tile_stride : op.w->row_stride;
  a.x = op.in.x;
  a.x_stride = op.in.stride;
  a.xq = op.in.q;
  a.m = m;
  a.k = op.w->n_in;
  a.j0 = j0;
  a.j1 = j1;
  a.y = op.y;
  a.y_stride = op.y_stride;
  a.accumulate = op.accumulate || !bias.empty();
  a.prefetch = kern.prefetch;
  kern.gemm(op.w->dtype)(a);
}

int64_t matmul_chunk_rows(const CpuBackend& be, int64_t total_rows) {
  // Several chunks per thread, so a thread slowed by other processes takes fewer; multiples of
  // 32 rows keep chunk edges on quantisation blocks for the epilogues.
  const int64_t threads = be.host_threads();
  const int64_t chunks = threads > 1 ? threads * 4 : 1;
  const int64_t rows = (total_rows + chunks - 1) / chunks;
  return rows < 32 ? 32 : (rows + 31) / 32 * 32;
}

void run_matmuls(CpuBackend& be, const MatOp* ops, int n_ops, int64_t m) {
  if (n_ops < 1 || n_ops > 3) throw Error("cpu stages: run_matmuls takes 1 to 3 maps, got " + std::to_string(n_ops));
  int64_t total = 0;
  for (int i = 0; i < n_ops; ++i) total += ops[i].w->n_out;
  const int64_t rows = matmul_chunk_rows(be, total);
  int64_t first[4] = {0, 0, 0, 0};  // first chunk of each op
  for (int i = 0; i < n_ops; ++i) first[i + 1] = first[i] + (ops[i].w->n_out + rows - 1) / rows;
  const Kernels& kern = be.kernels();
  be.pool().run(first[n_ops], 1, [&](int64_t c0, int64_t c1, int) {
    for (int64_t c = c0; c < c1; ++c) {
      int i = 0;
      while (c >= first[i + 1]) ++i;
      const int64_t j0 = (c - first[i]) * rows, n = ops[i].w->n_out;
      matmul_range(kern, ops[i], m, j0, j0 + rows < n ? j0 + rows : n);
    }
  });
}

void quantize_rows(CpuBackend& be, const float* x, int64_t stride, int64_t m, int64_t k, const QRows& q) {
  const Kernels& kern = be.kernels();
  // Rows per chunk: below ~16k values a dispatch costs more than it saves.
  const int64_t grain = k * 4 >= 16384 ? 4 : (16384 + k - 1) / k;
  be.pool().run(m, grain, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r)
      kern.quantize_q8(x + r * stride, k, q.q + r * q.q_stride, q.d + r * q.b_stride, q.s + r * q.b_stride);
  });
}

void QRowsLayout::plan(ScratchLayout& layout, int64_t rows, int64_t kk) {
  k = kk;
  q = layout.add(static_cast<size_t>(rows * k));
  d = layout.add(static_cast<size_t>(rows * (k / 32)) * sizeof(float));
  s = layout.add(static_cast<size_t>(rows * (k / 32)) * sizeof(int32_t));
}

QRows QRowsLayout::at(char* base) const {
  QRows r;
  r.q = reinterpret_cast<int8_t*>(base + q);
  r.d = reinterpret_cast<float*>(base + d);
  r.s = reinterpret_cast<int32_t*>(base + s);
  r.q_stride = k;
  r.b_stride = k / 32;
  return r;
}

}  // namespace semline::cpu
