// Linear maps on the device: y[r] (+)= W x[r] (+ b) for m activation rows. Up to kMatvecRows rows
// go through the matrix-vector kernel (decode, small batches), more through the tiled
// matrix-matrix kernel (prefill). The bias is added in the kernels' epilogue, where each output
// value is written anyway: a separate add would cost a dispatch, a barrier and a pass over y.
//
// ExpertLinear is the expert-indexed form (llama.cpp's mul_mat_id) over a stack of matrices:
// every (token, chosen expert) slot of ffn/moe's routing looks its expert up on the device.
#pragma once

#include "backend/kernels.h"
#include "ops/common.h"

namespace semline::vk {

inline constexpr int64_t kMatvecRows = 8;  // the largest MAXM matvec.comp is built with

class Linear {
 public:
  Linear() = default;
  // Builds both kernels for the weight's dtype; bias: none when empty.
  Linear(VulkanBackend& be, const DevWeight& w, const DevVector& bias = {});

  void run(VulkanBackend& be, const DevRows& x, const DevRows& y, int64_t m, bool accumulate) const;
  const DevWeight& weight() const { return w_; }
  double bytes() const { return w_.bytes() + (bias_.buf ? 4.0 * static_cast<double>(w_.n_out) : 0.0); }

 private:
  DevWeight w_;
  DevVector bias_;
  const Kernel* matvec1_ = nullptr;  // one row (decode)
  const Kernel* matvec_ = nullptr;   // up to kMatvecRows
  const Kernel* matmul_ = nullptr;
};

// The routing of one step as moe_route.comp leaves it in `buf` (word offsets): per slot s =
// t * used + k of its `tokens` tokens the chosen expert (ids) and its weight; per expert its slot
// count, the start of its run, and the runs of slots grouped by expert (lists).
struct Routing {
  const GpuBuffer* buf = nullptr;
  uint32_t ids = 0, weights = 0, counts = 0, offsets = 0, lists = 0;
  int64_t tokens = 0, used = 0;
};

class ExpertLinear {
 public:
  ExpertLinear() = default;
  ExpertLinear(VulkanBackend& be, const DevWeight& stack);

  // y[s] = W_{expert of s} x[row], for every slot s of the routing; row = the slot's token when
  // by_token (all slots of a token read its input row), else s itself.
  void run(VulkanBackend& be, const DevRows& x, const DevRows& y, const Routing& r, bool by_token) const;
  const DevWeight& weight() const { return w_; }

 private:
  DevWeight w_;
  const Kernel* matvec_ = nullptr;  // one slot per workgroup row block (decode)
  const Kernel* matmul_ = nullptr;  // tiles of one expert's slots (prefill)
};

}  // namespace semline::vk
