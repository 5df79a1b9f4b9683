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
      .embedding = {"token_embd", StageKind::Embedding, "lookup", {{"tokens", "token_embd.weight", {"n_embd", "n_vocab"}}}},
      .block = {{rms_norm("attn_norm"), rope_attention({{"q_bias", "blk.{L}.attn_q.bias", {"n_head*head_dim"}},
                                                        {"k_bias", "blk.{L}.attn_k.bias", {"n_head_kv*head_dim"}},
                                                        {"v_bias", "blk.{L}.attn_v.bias", {"n_head_kv*head_dim"}}})},
                {rms_norm("ffn_norm"), swiglu_ffn()}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_qwen2,
      .metadata_keys = rope_decoder_keys(),
  };
}

}  // namespace semline::archs
