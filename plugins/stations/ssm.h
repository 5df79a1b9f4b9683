// What the ssm stations (stations/ssm_mamba.cpp, ssm_mamba2.cpp) hand a backend: a Mamba mixer's
// shape and per-channel constants, and the two kernels that carry a sequence's recurrent state
// from step to step (Step::state): the causal convolution and the selective scan. The products
// around them are the backend's `linear` (stations/kernels.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <semline/stage.h>

namespace semline::stations {

// A Mamba mixer: x and z of d_inner channels, a state of d_state values per channel, a causal
// convolution of d_conv taps. Mamba-1 (n_head 0): dt and A per channel, one B and C per token, the
// convolution over x. Mamba-2: n_head heads of d_inner / n_head channels share dt and a scalar A;
// n_group groups of heads share B and C; the convolution runs over x | B | C.
struct SsmShape {
  int64_t d_inner = 0, d_conv = 0, d_state = 0, n_head = 0, n_group = 1;
  int64_t conv_channels() const { return n_head > 0 ? d_inner + 2 * n_group * d_state : d_inner; }
  // The recurrent state of one sequence, in F32 values: pools[0] the convolution's last d_conv - 1
  // inputs (oldest first, conv_channels each), pools[1] the SSM state h[channel][state].
  int64_t conv_state() const { return (d_conv - 1) * conv_channels(); }
  int64_t ssm_state() const { return d_inner * d_state; }
};

// The constants a backend binds once: conv [conv_channels][d_conv] taps and conv_bias
// [conv_channels]; a, the negative decay rates A (-exp(A_log), as the file stores them):
// [d_inner][d_state] (Mamba-1) or [n_head] (Mamba-2); d [d_inner], the skip (a head's D repeated
// over its channels); dt_bias [n_head] added to dt before the softplus (Mamba-2; empty for Mamba-1,
// whose dt projection adds its own).
class SsmWeights {
 public:
  virtual ~SsmWeights() = default;
  SsmShape shape;
};

struct SsmConstants {
  std::vector<float> conv, conv_bias, a, d, dt_bias;
};

class SsmKernels {
 public:
  virtual ~SsmKernels() = default;
  virtual std::unique_ptr<SsmWeights> bind_ssm(const std::string& label, const SsmShape& s, SsmConstants c) = 0;
  // For the step's tokens, each sequence's in position order (Step::state: the layer's pools, row
  // SeqView::slot; a sequence at n_past 0 starts from zeros), channel c of token t:
  //   out[t][c] = silu(conv_bias[c] + sum_k conv[c][k] u[t - (d_conv - 1) + k][c]),
  // the inputs before the sequence's first token of the step read from its convolution state,
  // which then holds its last d_conv - 1 inputs. u and out: rows of conv_channels values.
  virtual void ssm_conv(const Step& step, const SsmWeights& w, const Tensor& u, const Tensor& out) = 0;
  // The selective scan, token by token in each sequence's order, with its SSM state h; channel c
  // of head (Mamba-1: channel) e, group g:
  //   delta = softplus(dt[t][e] + dt_bias[e])   (log(1 + e^v), v itself above 20)
  //   h[c][s] = h[c][s] exp(delta a) + delta b[t][g][s] x[t][c]    (a: a[c][s], Mamba-2 a[e])
  //   y[t][c] = (sum_s h[c][s] cm[t][g][s] + d[c] x[t][c]) silu(z[t][c])
  // x, z, y: rows of d_inner values; dt: rows of n_head (Mamba-1: d_inner); b, cm: rows of
  // n_group * d_state.
  virtual void ssm_scan(const Step& step, const SsmWeights& w, const Tensor& x, const Tensor& dt, const Tensor& b,
                        const Tensor& cm, const Tensor& z, const Tensor& y) = 0;
};

}  // namespace semline::stations
