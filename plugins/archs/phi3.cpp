// Phi-3 as data, as llama.cpp's phi3 arch reads it: the llama decoder with one fused q | k | v map
// (attn_qkv), one fused gate | up map (ffn_up, 2 n_ff rows: the gate's first) and NeoX RoPE.
// Phi-3's sliding window (phi3.attention.sliding_window) is honoured, as the model defines it;
// llama.cpp turns it off, so the two agree on sequences shorter than the window. The 128k models'
// LongRoPE factors (rope_factors_long/short) are bound by no station: such a file is refused.
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

std::vector<std::string> phi3_keys() {
  std::vector<std::string> keys = rope_decoder_keys();
  keys.push_back("attention.sliding_window");
  return keys;
}

HParams read_phi3(const ModelView& model) {
  static const std::vector<std::string> keys = phi3_keys();
  HParamsReader r(model, "phi3", keys);
  HParams hp = r.rope_decoder(RopeType::NeoX);
  hp.sliding_window = read_sliding_window(model, r);
  return hp;
}

}  // namespace

ArchTemplate phi3_template() {
  return {
      .name = "phi3",
      .description = "Phi-3: the llama decoder with fused qkv and gate|up maps, NeoX RoPE",
      .embedding = token_embedding(),
      // The attention station checks the fused map's width, (n_head + 2 n_head_kv) head_dim.
      .block = {{rms_norm("attn_norm"),
                 {"attention", StageKind::Attention, "flash",
                  {{"qkv", "blk.{L}.attn_qkv.weight", {}},
                   {"o", "blk.{L}.attn_output.weight", {"n_head*head_dim", "n_embd"}}}}},
                {rms_norm("ffn_norm"),
                 {"ffn", StageKind::Ffn, "dense",
                  {{"gate_up", "blk.{L}.ffn_up.weight", {"n_embd", "2*n_ff"}},
                   {"down", "blk.{L}.ffn_down.weight", {"n_ff", "n_embd"}}}}}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_phi3,
      .metadata_keys = phi3_keys(),
  };
}

}  // namespace semline::archs
