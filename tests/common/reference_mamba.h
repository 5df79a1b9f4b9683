// A plain float64 Mamba-1 forward pass (llama.cpp's mamba arch, Falcon-Mamba's dt/B/C norms):
// the oracle of the ssm stations, written from the model's definition independently of them.
// One token at a time; the convolution's last inputs and the scan's state per layer.
#pragma once

#include <cstdint>
#include <vector>

#include <semline/model.h>

#include "common/reference_model.h"

namespace semline::testing {

struct ReferenceMambaOptions {
  // Round the input of Q8_0 / Q4_0 products to 8 bits as the cpu stages do: the mixers' products,
  // the head's (a line may place them on different backends).
  bool quantize_mixer_inputs = false;
  bool quantize_head_input = false;
};

class ReferenceMamba {
 public:
  explicit ReferenceMamba(const ModelView& m, ReferenceMambaOptions opt = {});

  // Feeds the next token of the sequence; returns the logits [n_vocab] after it.
  std::vector<double> step(int32_t token);

 private:
  std::vector<double> matvec(const std::string& name, std::vector<double> x, bool round_input);
  std::vector<double> rmsnorm(const std::vector<double>& x, const double* scale);

  const ModelView& m_;
  WeightCache w;
  ReferenceMambaOptions opt_;
  int64_t n_embd_, n_layer_, n_vocab_, d_inner_, d_conv_, d_state_, dt_rank_;
  bool dt_b_c_rms_ = false;
  double eps_ = 1e-5;
  std::vector<std::vector<double>> conv_, ssm_;  // per layer: [d_conv - 1][d_inner], [d_inner][d_state]
};

}  // namespace semline::testing
