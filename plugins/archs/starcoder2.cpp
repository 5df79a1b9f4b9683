// StarCoder2 as data, as llama.cpp's starcoder2 arch reads it: pre-norm blocks of LayerNorm ->
// attention (GQA, NeoX RoPE, biases on q, k, v and the output map) and LayerNorm -> a GELU MLP
// with biases (the tanh approximation, ggml_gelu); a final LayerNorm and a tied or own head.
// StarCoder2's sliding window (attention.sliding_window, 4096 in the released models, written by
// semline's converter from config.json) is honoured, as the model defines it; llama.cpp's converter
// drops it, so the two agree on sequences shorter than the window.
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

constexpr const char* kEps = "attention.layer_norm_epsilon";

std::vector<TensorBinding> biases_with_output() {
  std::vector<TensorBinding> b = qkv_biases();
  b.push_back({"o_bias", "blk.{L}.attn_output.bias", {"n_embd"}});
  return b;
}

std::vector<std::string> starcoder2_keys() {
  std::vector<std::string> keys = rope_decoder_keys(kEps);
  keys.push_back("attention.sliding_window");
  return keys;
}

HParams read_starcoder2(const ModelView& model) {
  static const std::vector<std::string> keys = starcoder2_keys();
  HParamsReader r(model, "starcoder2", keys);
  HParams hp = r.rope_decoder(RopeType::NeoX, kEps);
  hp.ffn_act = Activation::GeluTanh;
  hp.sliding_window = read_sliding_window(model, r);
  return hp;
}

}  // namespace

ArchTemplate starcoder2_template() {
  return {
      .name = "starcoder2",
      .description = "StarCoder2: LayerNorm, NeoX RoPE attention with GQA and biases, GELU MLP with biases",
      .embedding = token_embedding(),
      .block = {{layer_norm("attn_norm"), rope_attention(biases_with_output())},
                {layer_norm("ffn_norm"),
                 gelu_mlp()}},
      .output_norm = layer_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_starcoder2,
      .metadata_keys = starcoder2_keys(),
  };
}

}  // namespace semline::archs
