// GPT-NeoX (Pythia) as data, as llama.cpp's gptneox arch reads it: LayerNorm with biases, one
// fused q | k | v map with a bias, partial NeoX RoPE (rope.dimension_count of each head), a GELU
// MLP with biases, and, when gptneox.use_parallel_residual says so, both sub-layers reading the
// block's input: h += attention(ln1(h)) + mlp(ln2(h)).
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

constexpr const char* kEps = "attention.layer_norm_epsilon";

std::vector<std::string> gptneox_keys() {
  std::vector<std::string> keys = rope_decoder_keys(kEps);
  keys.push_back("use_parallel_residual");
  return keys;
}

HParams read_gptneox(const ModelView& model) {
  static const std::vector<std::string> keys = gptneox_keys();
  HParamsReader r(model, "gptneox", keys);
  HParams hp = r.rope_decoder(RopeType::NeoX, kEps);
  hp.ffn_act = Activation::GeluTanh;  // ggml_gelu, as llama.cpp runs the arch
  hp.parallel_residual = r.find_bool("use_parallel_residual").value_or(false);
  return hp;
}

}  // namespace

ArchTemplate gptneox_template() {
  return {
      .name = "gptneox",
      .description = "GPT-NeoX: LayerNorm, fused-qkv attention with biases and partial NeoX RoPE, GELU MLP, parallel residual",
      .embedding = token_embedding(),
      // The attention station checks the fused map's width, (n_head + 2 n_head_kv) head_dim.
      .block = {{layer_norm("attn_norm"),
                 {"attention", StageKind::Attention, "flash",
                  {{"qkv", "blk.{L}.attn_qkv.weight", {}},
                   {"qkv_bias", "blk.{L}.attn_qkv.bias", {}},
                   {"o", "blk.{L}.attn_output.weight", {"n_head*head_dim", "n_embd"}},
                   {"o_bias", "blk.{L}.attn_output.bias", {"n_embd"}}}}},
                {layer_norm("ffn_norm"),
                 gelu_mlp()}},
      .output_norm = layer_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_gptneox,
      .metadata_keys = gptneox_keys(),
  };
}

}  // namespace semline::archs
