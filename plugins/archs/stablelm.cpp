// StableLM 2 (1.6B, 3B) as data, as llama.cpp's stablelm arch reads it: LayerNorm with biases, the
// llama attention with optional q/k/v biases and partial NeoX RoPE (rope.dimension_count of each
// head), a SwiGLU feed-forward. StableLM 2 12B's parallel residual (use_parallel_residual, no
// ffn_norm) and per-head q/k LayerNorms are not computed: such a file is refused, naming the key or
// a tensor no station binds.
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

constexpr const char* kEps = "attention.layer_norm_epsilon";

std::vector<std::string> stablelm_keys() {
  std::vector<std::string> keys = rope_decoder_keys(kEps);
  keys.push_back("use_parallel_residual");  // llama.cpp's converter writes it, false for StableLM 2 1.6B and 3B
  return keys;
}

HParams read_stablelm(const ModelView& model) {
  static const std::vector<std::string> keys = stablelm_keys();
  HParamsReader r(model, "stablelm", keys);
  if (r.find_bool("use_parallel_residual").value_or(false))
    throw Error(model.path() + ": " + r.full("use_parallel_residual") +
                " = true (StableLM 2 12B: attention and feed-forward both read the block's input) is not supported");
  return r.rope_decoder(RopeType::NeoX, kEps);
}

}  // namespace

ArchTemplate stablelm_template() {
  return {
      .name = "stablelm",
      .description = "StableLM 2: LayerNorm, partial NeoX RoPE attention with optional q/k/v biases, SwiGLU",
      .embedding = token_embedding(),
      .block = {{layer_norm("attn_norm"), rope_attention(qkv_biases(true))},
                {layer_norm("ffn_norm"), swiglu_ffn()}},
      .output_norm = layer_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_stablelm,
      .metadata_keys = stablelm_keys(),
  };
}

}  // namespace semline::archs
