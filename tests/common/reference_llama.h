// A slow, plain float64 llama forward pass: the oracle every stage, variant and backend is checked
// against. No plugins, no SIMD, no paging: one token at a time, every weight dequantised to double.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <semline/model.h>

namespace semline::testing {

// Hyper-parameters read straight from a llama GGUF's metadata (independent of the archs plugin).
HParams read_llama_hparams(const ModelView& m);

class ReferenceLlama {
 public:
  ReferenceLlama(const ModelView& m, const HParams& hp);

  // Feeds the next token of the sequence; returns the logits [n_vocab] after it.
  std::vector<double> step(int32_t token);
  int32_t position() const { return pos_; }

 private:
  const std::vector<double>& w(const std::string& name);  // weight as doubles, row-major [rows][ne0]
  std::vector<double> matvec(const std::string& name, const std::vector<double>& x);
  std::vector<double> rmsnorm(const std::vector<double>& x, const std::string& weight);
  void rope(double* v, int64_t pos);

  const ModelView& m_;
  HParams hp_;
  std::map<std::string, std::vector<double>> cache_;
  std::vector<std::vector<double>> k_, v_;  // per layer: [pos][n_head_kv * head_dim]
  int32_t pos_ = 0;
};

// Index of the largest value (first on ties).
int32_t argmax(const std::vector<double>& v);

}  // namespace semline::testing
