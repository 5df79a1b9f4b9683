// Qwen3 (dense) as data, as llama.cpp's qwen3 arch reads it: the llama decoder with NeoX RoPE, a
// head size of its own (qwen3.attention.key_length) and each head of q and k RMS-normalised
// before the rotation (attn_q_norm, attn_k_norm: one head's width each).
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

HParams read_qwen3(const ModelView& model) {
  static const std::vector<std::string> keys = rope_decoder_keys();
  return HParamsReader(model, "qwen3", keys).rope_decoder(RopeType::NeoX);
}

}  // namespace

ArchTemplate qwen3_template() {
  return {
      .name = "qwen3",
      .description = "Qwen3: the llama decoder with per-head q/k RMSNorm and NeoX RoPE",
      .embedding = token_embedding(),
      .block = {{rms_norm("attn_norm"), rope_attention({{"q_norm", "blk.{L}.attn_q_norm.weight", {"head_dim"}},
                                                        {"k_norm", "blk.{L}.attn_k_norm.weight", {"head_dim"}}})},
                {rms_norm("ffn_norm"), swiglu_ffn()}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_qwen3,
      .metadata_keys = rope_decoder_keys(),
  };
}

}  // namespace semline::archs
