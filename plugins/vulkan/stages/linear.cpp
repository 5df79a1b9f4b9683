#include "stages/linear.h"

namespace semline::vk {
namespace {

constexpr uint32_t kMatvecWg = 64;
constexpr uint32_t kMatvecRowsPerGroup = 2;  // NR of matvec.comp
constexpr uint32_t kTile = 64;               // BM, BN of matmul.comp

struct LinearPush {
  uint32_t w_off, w_row, n_in, n_out;
  uint32_t x_off, x_stride, y_off, y_stride;
  uint32_t m, accumulate, aligned;
};

// Whether the matrix-vector kernel may read weights and x 16 bytes at a time.
bool aligned_rows(const DevWeight& w, const DevRows& x) {
  const bool quantized = w.dtype == DType::Q8_0 || w.dtype == DType::Q4_0;
  return x.off % 4 == 0 && x.stride % 4 == 0 && (quantized || (w.offset % 16 == 0 && w.row_bytes % 16 == 0));
}

}  // namespace

Linear::Linear(VulkanBackend& be, const DevWeight& w) : w_(w) {
  const uint32_t dt = static_cast<uint32_t>(w.dtype);
  matvec1_ = &be.kernels().get(ShaderId::Matvec, {kMatvecWg, dt, 1});
  matvec_ = &be.kernels().get(ShaderId::Matvec, {kMatvecWg, dt, static_cast<uint32_t>(kMatvecRows)});
  matmul_ = &be.kernels().get(ShaderId::Matmul, {dt});
}

void Linear::run(VulkanBackend& be, const DevRows& x, const DevRows& y, int64_t m, bool accumulate) const {
  if (m <= 0) return;
  LinearPush p{w_.offset, w_.row_bytes, u32(w_.n_in), u32(w_.n_out), x.off, x.stride, y.off, y.stride, u32(m),
               accumulate ? 1u : 0u, aligned_rows(w_, x) ? 1u : 0u};
  if (m <= kMatvecRows) {
    be.dispatch(m == 1 ? *matvec1_ : *matvec_, {w_.buf, x.buf, y.buf}, &p, sizeof p,
                (static_cast<uint64_t>(w_.n_out) + kMatvecRowsPerGroup - 1) / kMatvecRowsPerGroup);
  } else {
    be.dispatch_grid(*matmul_, {w_.buf, x.buf, y.buf}, &p, sizeof p, u32((w_.n_out + kTile - 1) / kTile),
                     u32((m + kTile - 1) / kTile));
  }
}

}  // namespace semline::vk
