// Synthetic models: GGUF files of the llama lineage (llama, qwen2) of any shape with seeded random
// weights, for tests, for the recorded llama.cpp oracle of each family, and for benchmarks at
// realistic sizes.
//
// Weights are uniform with standard deviation 1/sqrt(row length), so activations keep their scale
// through the layers; norm weights are 1 +- 0.1. Each tensor's values depend only on the seed and
// its name, and tensors are generated one at a time while the file is written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/gguf_writer.h"
#include "semline/tensor.h"

namespace semline {

struct SynthSpec {
  std::string arch = "llama";  // one of synth_archs()
  std::string name = "synth";  // general.name
  int64_t dim = 0;
  int64_t ffn = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t vocab = 0;  // ignored when vocab_gguf is set
  int64_t ctx = 2048;
  double rope_base = 10000.0;
  double eps = 1e-5;
  DType dtype = DType::F32;  // of the weight matrices; norms and rows that are not whole blocks stay F32
  uint64_t seed = 1;
  // When set, the tokenizer.* metadata is copied from this GGUF and the vocabulary size taken from
  // it; otherwise a byte-fallback llama tokenizer of `vocab` tokens is generated.
  std::filesystem::path vocab_gguf{};
  bool tied_output = false;  // no output.weight: the embedding doubles as the classifier
  // Mixtral-style feed-forward: a router (ffn_gate_inp, kept F32 as llama.cpp keeps it) and
  // stacks of `experts` SwiGLU networks of width ffn (ffn_{gate,up,down}_exps) instead of the
  // dense ffn_{gate,up,down}; each token uses `experts_used` of them. 0, 0: dense.
  int64_t experts = 0;
  int64_t experts_used = 0;
  int64_t window = 0;  // {arch}.attention.sliding_window (Mistral, Phi-3, StarCoder2, Gemma 2); 0: not written
  // llama: Llama 3's rope_freqs.weight, a divisor of each rotated pair's frequency (1 to 8, growing
  // with the pair's wavelength as Llama 3's do).
  bool rope_freqs = false;
  int64_t head_dim = 0;  // 0: dim / heads; else written as {arch}.attention.key_length (qwen3's heads are wider)
  double rope_scale = 0;  // linear RoPE scaling: positions divided by it ({arch}.rope.scaling.*); 0: none
  // gemma2: the attention and final logit soft caps; 0: Gemma 2's own, 50 and 30 (small ones make
  // the caps bite in a tiny model).
  double attn_softcap = 0, final_softcap = 0;
  // mamba, mamba2: each channel's state size and convolution width (d_inner is 2 dim; Mamba-1's
  // dt_rank ceil(dim / 16), as llama.cpp's converter has them); dt_b_c_rms writes Falcon-Mamba;
  // mamba2's heads are head_dim channels (0: 16) in ssm_groups groups.
  int64_t d_state = 16, d_conv = 4, ssm_groups = 1;
  bool dt_b_c_rms = false;
};

// The families synth writes: llama (and Mixtral-style experts), qwen2 (q/k/v biases), qwen3
// (per-head q/k RMSNorm), phi3 (fused qkv and gate|up), starcoder2 (LayerNorm, biases everywhere,
// a GELU MLP), gptneox (starcoder2's kind with fused qkv, a quarter of each head rotated and a
// parallel residual), stablelm (LayerNorm, q/k/v biases, a quarter of each head rotated, SwiGLU),
// gemma2 (sandwich norms, GeGLU, soft caps, a window on the even layers, a tied head), mamba and
// mamba2 (selective state-space blocks; ffn, heads and kv_heads unused).
std::vector<std::string> synth_archs();

// Presets: "tiny" (dim 64, 2 layers, generated 512-token vocabulary: fast enough for unit tests),
// "llama-134m" and "llama-1b" (vocabulary 32000; pass a vocab GGUF to get a real tokenizer),
// "mixtral-tiny" (dim 256, 4 layers, 8 experts of which 2 are used, 512-token vocabulary) and
// "mixtral-1b" (dim 1024, 16 layers, 8 experts, 2 used, vocabulary 32000: ~1.3B weights, ~0.4B
// used per token).
SynthSpec synth_preset(std::string_view name);
std::vector<std::string> synth_preset_names();

// Throws semline::Error naming the field when the spec cannot describe a model.
void synth_validate(const SynthSpec& spec);

void synth_write(const SynthSpec& spec, const std::filesystem::path& out, const gguf::Progress& progress = {});

}  // namespace semline
