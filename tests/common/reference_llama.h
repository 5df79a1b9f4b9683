// A slow, plain float64 llama forward pass: the oracle every stage, variant and backend is checked
// against. No plugins, no SIMD, no paging: one token at a time, every weight dequantised to double.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <semline/model.h>

#include "common/reference_model.h"

namespace semline::testing {

// Hyper-parameters read straight from the GGUF metadata of a model of the llama lineage (llama,
// qwen2), independent of the archs plugin: "{arch}.*" keys for the file's general.architecture.
HParams read_llama_hparams(const ModelView& m);

// Which keys a query meets: key position k for a query at position q (k <= q is given).
using KeyMask = std::function<bool(int64_t q, int64_t k)>;
KeyMask sliding_window_mask(int64_t window);  // the `window` most recent positions: q - window < k

struct ReferenceOptions {
  // One mask per layer; a layer without one (shorter list, empty function) meets the keys the
  // model's own window lets it (hp.sliding_window on the layers of hp.extra swa_period: Gemma 2),
  // else every key 0..q.
  std::vector<KeyMask> masks;
  // Rounds the input of every Q8_0 / Q4_0 weight to 8 bits in blocks of 32 as the cpu stages do
  // (round_like_q8_input). Off, the reference is the model's exact arithmetic; on, it follows
  // the stages to their kernels' tolerance.
  bool quantize_inputs = false;
  // The KV cache's dtype: F16 or Q8_0 round each key and value row as the stages store them
  // (round_f16, round_like_kv_q8); F32 keeps them exact.
  DType kv_cache = DType::F32;
};

// Mixture-of-experts layers (Mixtral) when hp.n_expert > 0: softmax over the router logits, the
// n_expert_used largest (equal logits: the lower index first), their probabilities renormalised.
// The lineage's options follow the file: biases where it has them (qwen2's q, k, v; starcoder2's
// everywhere), LayerNorm where a norm has a .bias, a GELU MLP where there is no ffn_gate
// (starcoder2), per-head q/k RMSNorm where it has attn_{q,k}_norm (qwen3), fused maps where it has
// attn_qkv (phi3, gptneox) or an ffn_up of 2 n_ff rows (phi3), a parallel residual (gptneox),
// RoPE pairs as hp.rope_type says, each pair's frequency divided by rope_freqs.weight where the
// file has it (Llama 3) and positions scaled by hp.rope_freq_scale.
class ReferenceLlama {
 public:
  ReferenceLlama(const ModelView& m, const HParams& hp, ReferenceOptions opt = {});

  // Feeds the next token of the sequence; returns the logits [n_vocab] after it.
  std::vector<double> step(int32_t token);
  int32_t position() const { return pos_; }
  // The smallest gap so far between the last chosen and the first unchosen router logit: the
  // stages route as the reference does as long as their rounding moves the logits by less.
  double min_router_gap() const { return min_router_gap_; }

 private:
  // Rows [row0, row0 + n_out) of the weight (n_out < 0: all) times x.
  std::vector<double> matvec(const std::string& name, const std::vector<double>& x, int64_t row0 = 0,
                             int64_t n_out = -1);
  std::vector<double> swiglu(const std::string& prefix, const std::vector<double>& x, int64_t expert);
  double gelu(double u) const;  // the model's: exact or tanh
  std::vector<double> moe(const std::string& prefix, const std::vector<double>& x);
  // RMSNorm, or LayerNorm where the weight has a .bias beside it (starcoder2).
  std::vector<double> rmsnorm(const std::vector<double>& x, const std::string& weight);
  void head_norm(double* v, const std::string& weight);  // one head of q or k, RMSNorm (qwen3)
  // matvec plus the bias `name`'s ".weight" has as ".bias", when the file has one.
  std::vector<double> affine(const std::string& weight, const std::vector<double>& x);
  void rope(double* v, int64_t pos);

  const ModelView& m_;
  WeightCache w;  // the weights as doubles
  HParams hp_;
  ReferenceOptions opt_;
  std::vector<KeyMask> model_masks_;  // the model's window, on the layers it has one
  std::vector<std::vector<double>> k_, v_;  // per layer: [pos][n_head_kv * head_dim]
  int32_t pos_ = 0;
  double min_router_gap_ = INFINITY;
};

// Index of the largest value (first on ties).
int32_t argmax(const std::vector<double>& v);

}  // namespace semline::testing
