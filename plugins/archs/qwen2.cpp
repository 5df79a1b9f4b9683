// Qwen2 (Qwen1.5, Qwen2, Qwen2.5) as data, as llama.cpp's qwen2 arch reads it: the llama decoder
// with biases on the q, k and v maps and NeoX-style RoPE (pairs i, i + rope_dim / 2).
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

HParams read_qwen2(const ModelView& model) {
  static const std::vector<std::string> keys = rope_decoder_keys();
  return HParamsReader(model, "qwen2", keys).rope_decoder(RopeType::NeoX);
}

}  // namespace

ArchTemplate qwen2_template() {
  return {
      .name = "qwen2",
      .description = "Qwen2: the llama decoder with q/k/v biases and NeoX RoPE",
      .embedding = token_embedding(),
      .block = {{rms_norm("attn_norm"), rope_attention(qkv_biases())},
                {rms_norm("ffn_norm"), swiglu_ffn()}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_qwen2,
      .metadata_keys = rope_decoder_keys(),
  };
}

}  // namespace semline::archs
