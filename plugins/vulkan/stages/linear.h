// Linear maps on the device: y[r] (+)= W x[r] (+ b) for m activation rows. Up to kMatvecRows rows
// go through the matrix-vector kernel (decode, small batches), more through the tiled
// matrix-matrix kernel (prefill). The bias is added in the kernels' epilogue, where each output
// value is written anyway: a separate add would cost a dispatch, a barrier and a pass over y.
#pragma once

#include "backend/kernels.h"
#include "stages/common.h"

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

}  // namespace semline::vk
