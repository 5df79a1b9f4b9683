// What the ssm station (stations/ssm_mamba.cpp) hands a backend: a Mamba mixer's shape and
// per-channel constants, and the two kernels that carry a sequence's recurrent state from step to
// step (Step::state): the causal convolution and the selective scan. The products around them are
// the backend's `linear` (stations/kernels.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <semline/stage.h>

namespace semline::stations {

// A Mamba-1 mixer: x and z of d_inner channels, a causal convolution of d_conv taps over x, a
// state of d_state values per channel.
struct SsmShape {
  int64_t d_inner = 0, d_conv = 0, d_state = 0;
  // The recurrent state of one sequence, in F32 values: pools[0] the convolution's last d_conv - 1
  // inputs (oldest first, d_inner each), pools[1] the SSM state h[channel][state].
  int64_t conv_state() const { return (d_conv - 1) * d_inner; }
  int64_t ssm_state() const { return d_inner * d_state; }
};

// The constants a backend binds once: conv [d_inner][d_conv] taps and conv_bias [d_inner]; a
// [d_inner][d_state], the negative decay rates A (-exp(A_log), as the file stores them); d
// [d_inner], the skip.
class SsmWeights {
 public:
  virtual ~SsmWeights() = default;
  SsmShape shape;
};

class SsmKernels {
 public:
  virtual ~SsmKernels() = default;
  virtual std::unique_ptr<SsmWeights> bind_ssm(const std::string& label, const SsmShape& s, std::vector<float> conv,
                                               std::vector<float> conv_bias, std::vector<float> a,
                                               std::vector<float> d) = 0;
  // For the step's tokens, each sequence's in position order (Step::state: the layer's pools, row
  // SeqView::slot; a sequence at n_past 0 starts from zeros), channel c of token t:
  //   out[t][c] = silu(conv_bias[c] + sum_k conv[c][k] u[t - (d_conv - 1) + k][c]),
  // the inputs before the sequence's first token of the step read from its convolution state,
  // which then holds its last d_conv - 1 inputs. u and out: rows of d_inner values.
  virtual void ssm_conv(const Step& step, const SsmWeights& w, const Tensor& u, const Tensor& out) = 0;
  // The selective scan, token by token in each sequence's order, with its SSM state h:
  //   delta = softplus(dt[t][c])   (log(1 + e^v), v itself above 20)
  //   h[c][s] = h[c][s] exp(delta a[c][s]) + delta b[t][s] x[t][c]
  //   y[t][c] = (sum_s h[c][s] cm[t][s] + d[c] x[t][c]) silu(z[t][c])
  // x, dt, z, y: rows of d_inner values; b, cm: rows of d_state.
  virtual void ssm_scan(const Step& step, const SsmWeights& w, const Tensor& x, const Tensor& dt, const Tensor& b,
                        const Tensor& cm, const Tensor& z, const Tensor& y) = 0;
};

}  // namespace semline::stations
