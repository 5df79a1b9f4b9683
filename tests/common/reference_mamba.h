// A plain float64 Mamba forward pass (llama.cpp's mamba arch with Falcon-Mamba's dt/B/C norms, its
// mamba2 arch, and the jamba hybrid: attention without positions on the layers that have q/k/v,
// Mamba-1 with dt/B/C norm scales on the others, a dense or mixture-of-experts SwiGLU after each):
// the oracle of the ssm stations, written from the models' definitions independently of them.
// One token at a time; the convolution's last inputs and the scan's state per Mamba layer, the
// keys and values per attention layer.
#pragma once

#include <cstdint>
#include <vector>

#include <semline/model.h>

#include "common/reference_model.h"

namespace semline::testing {

struct ReferenceMambaOptions {
  // Round the input of Q8_0 / Q4_0 products to 8 bits as the cpu stages do: the Mamba mixers'
  // products, and the others' (attention, feed-forward, head), which a line may place elsewhere.
  bool quantize_ssm_inputs = false;
  bool quantize_other_inputs = false;
};

class ReferenceMamba {
 public:
  explicit ReferenceMamba(const ModelView& m, ReferenceMambaOptions opt = {});

  // Feeds the next token of the sequence; returns the logits [n_vocab] after it.
  std::vector<double> step(int32_t token);

 private:
  std::vector<double> matvec(const std::string& name, std::vector<double> x, bool round_input);
  std::vector<double> rmsnorm(const std::vector<double>& x, const double* scale);
  // The causal convolution of layer l over `in` (its channels), with bias and silu; the state moves on.
  std::vector<double> conv(int64_t l, const std::string& prefix, const std::vector<double>& in);
  std::vector<double> mamba1(int64_t l, const std::string& prefix, const std::vector<double>& x);
  std::vector<double> mamba2(int64_t l, const std::string& prefix, const std::vector<double>& x);
  std::vector<double> attention(int64_t l, const std::string& prefix, const std::vector<double>& x);
  std::vector<double> swiglu(const std::string& gate, const std::string& up, const std::string& down,
                             const std::vector<double>& x, int64_t expert);
  std::vector<double> ffn(const std::string& prefix, const std::vector<double>& x);

  const ModelView& m_;
  WeightCache w;
  ReferenceMambaOptions opt_;
  int64_t n_embd_, n_layer_, n_vocab_, d_inner_, d_conv_, d_state_, dt_rank_;  // Mamba-2: dt_rank_ heads
  int64_t n_group_ = 0;  // Mamba-2's groups; 0: Mamba-1
  int64_t n_head_ = 0, n_head_kv_ = 0, n_expert_used_ = 0;  // Jamba's attention and experts
  bool dt_b_c_rms_ = false;
  double eps_ = 1e-5;
  std::vector<std::vector<double>> conv_, ssm_;  // per layer: [d_conv - 1][channels], [d_inner][d_state]
  std::vector<std::vector<std::vector<double>>> k_, v_;  // per attention layer: [pos][n_head_kv * head_dim]
};

}  // namespace semline::testing
