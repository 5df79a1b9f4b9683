#include "ops/linear.h"

namespace semline::vk {
namespace {

constexpr uint32_t kMatvecWg = 64;
constexpr uint32_t kMatvecRowsPerGroup = 2;  // NR of matvec.comp
constexpr uint32_t kTile = 64;               // BM, BN of matmul.comp

// linear_push.glsl
struct LinearPush {
  uint32_t w_off, w_row, n_in, n_out;
  uint32_t x_off, x_stride, y_off, y_stride;
  uint32_t m, accumulate, aligned, has_bias;
  uint32_t b_off, w_expert, x_div, row_tiles;
  uint32_t ids_off, cnt_off, ofs_off, list_off;
};

// Whether the matrix-vector kernel may read weights and x 16 bytes at a time.
bool aligned_rows(const DevWeight& w, const DevRows& x) {
  const bool quantized = w.dtype == DType::Q8_0 || w.dtype == DType::Q4_0;
  return x.off % 4 == 0 && x.stride % 4 == 0 && (quantized || (w.offset % 16 == 0 && w.row_bytes % 16 == 0));
}

LinearPush push_for(const DevWeight& w, const DevRows& x, const DevRows& y) {
  LinearPush p{};
  p.w_off = w.offset;
  p.w_row = w.row_bytes;
  p.n_in = u32(w.n_in);
  p.n_out = u32(w.n_out);
  p.x_off = x.off;
  p.x_stride = x.stride;
  p.y_off = y.off;
  p.y_stride = y.stride;
  p.aligned = aligned_rows(w, x) ? 1u : 0u;
  p.w_expert = w.expert_bytes;
  p.x_div = 1;
  return p;
}

uint64_t row_groups(const DevWeight& w) {
  return (static_cast<uint64_t>(w.n_out) + kMatvecRowsPerGroup - 1) / kMatvecRowsPerGroup;
}

}  // namespace

Linear::Linear(VulkanBackend& be, const DevWeight& w, const DevVector& bias) : w_(w), bias_(bias) {
  const uint32_t dt = static_cast<uint32_t>(w.dtype);
  matvec1_ = &be.kernels().get(ShaderId::Matvec, {kMatvecWg, dt, 1, 0});
  matvec_ = &be.kernels().get(ShaderId::Matvec, {kMatvecWg, dt, static_cast<uint32_t>(kMatvecRows), 0});
  matmul_ = &be.kernels().get(ShaderId::Matmul, {dt, 0});
}

void Linear::run(VulkanBackend& be, const DevRows& x, const DevRows& y, int64_t m, bool accumulate) const {
  if (m <= 0) return;
  LinearPush p = push_for(w_, x, y);
  p.m = u32(m);
  p.accumulate = accumulate ? 1u : 0u;
  p.has_bias = bias_.buf ? 1u : 0u;
  p.b_off = bias_.off;
  // Without a bias (and always for the route binding) the kernel's extra bindings name the
  // weight buffer, which it then never reads through them.
  const GpuBuffer* b = bias_.buf ? bias_.buf : w_.buf;
  if (m <= kMatvecRows) {
    be.dispatch(m == 1 ? *matvec1_ : *matvec_, {w_.buf, x.buf, y.buf, b, w_.buf}, &p, sizeof p, row_groups(w_));
  } else {
    be.dispatch_grid(*matmul_, {w_.buf, x.buf, y.buf, b, w_.buf}, &p, sizeof p, u32((w_.n_out + kTile - 1) / kTile),
                     u32((m + kTile - 1) / kTile));
  }
}

ExpertLinear::ExpertLinear(VulkanBackend& be, const DevWeight& stack) : w_(stack) {
  const uint32_t dt = static_cast<uint32_t>(stack.dtype);
  matvec_ = &be.kernels().get(ShaderId::Matvec, {kMatvecWg, dt, 1, 1});
  matmul_ = &be.kernels().get(ShaderId::Matmul, {dt, 1});
}

void ExpertLinear::run(VulkanBackend& be, const DevRows& x, const DevRows& y, const Routing& r, bool by_token) const {
  const int64_t slots = r.tokens * r.used;
  if (slots <= 0) return;
  LinearPush p = push_for(w_, x, y);
  p.m = u32(slots);
  p.x_div = by_token ? u32(r.used) : 1u;
  p.ids_off = r.ids;
  p.cnt_off = r.counts;
  p.ofs_off = r.offsets;
  p.list_off = r.lists;
  // Few slots (decode): one matrix-vector product per slot, each reading its expert's rows. More:
  // tiles of up to 64 slots of one expert, so an expert's weights are read once per tile; an
  // expert has at most one slot per token, so ceil(tokens / 64) tiles per expert cover them.
  if (slots <= kMatvecRows) {
    be.dispatch(*matvec_, {w_.buf, x.buf, y.buf, w_.buf, r.buf}, &p, sizeof p,
                row_groups(w_) * static_cast<uint64_t>(slots));
  } else {
    p.row_tiles = u32((r.tokens + kTile - 1) / kTile);
    be.dispatch_grid(*matmul_, {w_.buf, x.buf, y.buf, w_.buf, r.buf}, &p, sizeof p, u32((w_.n_out + kTile - 1) / kTile),
                     u32(static_cast<int64_t>(p.row_tiles) * w_.n_expert));
  }
}

}  // namespace semline::vk
