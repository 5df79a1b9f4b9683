// A slow, plain float64 GPT-2 forward pass, the oracle for the gpt2 line: no plugins, no SIMD, no
// paging, one token at a time, every weight dequantised to double. It reads llama.cpp's gpt2
// tensor names, so it runs on a GGUF and on a Hugging Face folder (read in the same terms) alike.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <semline/model.h>

#include "common/reference_model.h"

namespace semline::testing {

// Hyper-parameters read straight from gpt2.* metadata (independent of the archs plugin).
HParams read_gpt2_hparams(const ModelView& m);

class ReferenceGpt2 {
 public:
  ReferenceGpt2(const ModelView& m, const HParams& hp);

  // Feeds the next token of the sequence; returns the logits [n_vocab] after it.
  std::vector<double> step(int32_t token);
  int32_t position() const { return pos_; }

 private:
  std::vector<double> affine(const std::string& prefix, const std::vector<double>& x);  // W x + b
  std::vector<double> layernorm(const std::vector<double>& x, const std::string& prefix);
  double gelu(double x) const;

  const ModelView& m_;
  WeightCache w;  // the weights as doubles
  HParams hp_;
  std::vector<std::vector<double>> k_, v_;  // per layer: [pos][n_embd]
  int32_t pos_ = 0;
};

}  // namespace semline::testing
