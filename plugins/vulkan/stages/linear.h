// A linear map on the device: y[r] (+)= W x[r] for m activation rows. Up to kMatvecRows rows go
// through the matrix-vector kernel (decode, small batches), more through the tiled
// matrix-matrix kernel (prefill).
#pragma once

#include "backend/kernels.h"
#include "stages/common.h"

namespace semline::vk {

inline constexpr int64_t kMatvecRows = 8;  // the largest MAXM matvec.comp is built with

class Linear {
 public:
  Linear() = default;
  Linear(VulkanBackend& be, const DevWeight& w);  // builds both kernels for the weight's dtype

  void run(VulkanBackend& be, const DevRows& x, const DevRows& y, int64_t m, bool accumulate) const;
  const DevWeight& weight() const { return w_; }
  double bytes() const { return w_.bytes(); }

 private:
  DevWeight w_;
  const Kernel* matvec1_ = nullptr;  // one row (decode)
  const Kernel* matvec_ = nullptr;   // up to kMatvecRows
  const Kernel* matmul_ = nullptr;
};

}  // namespace semline::vk
