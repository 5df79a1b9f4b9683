// Gemma 2 as data, as llama.cpp's gemma2 arch reads it: the embedding rows scaled by sqrt(n_embd);
// each sub-layer normed before and after (post_attention_norm, post_ffw_norm: the sandwich, the
// normed result added to the residual stream); attention with NeoX RoPE, scores scaled by
// 1 / sqrt(head_dim) (the 27B, 46 layers: by its query_pre_attn_scalar, n_embd / n_head) and
// soft-capped (attn_logit_softcapping, 50 when absent), a sliding window (4096 when absent) on the
// layers of the pattern (sliding_window_pattern 2: the even ones); a GeGLU feed-forward (tanh
// GELU); the head tied to the embedding, its logits soft-capped (final_logit_softcapping, 30).
// The GGUF's norm weights are Gemma's 1 + w already (llama.cpp's converter adds the 1).
#include <cmath>

#include <semline/error.h>

#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

std::vector<std::string> gemma2_keys() {
  std::vector<std::string> keys = rope_decoder_keys();
  keys.insert(keys.end(), {"attention.sliding_window", "attention.sliding_window_pattern", "attn_logit_softcapping",
                           "final_logit_softcapping"});
  return keys;
}

HParams read_gemma2(const ModelView& model) {
  static const std::vector<std::string> keys = gemma2_keys();
  HParamsReader r(model, "gemma2", keys);
  HParams hp = r.rope_decoder(RopeType::NeoX);
  hp.ffn_act = Activation::GeluTanh;
  hp.sliding_window = r.find_integer("attention.sliding_window").value_or(4096);
  const int64_t period = r.find_integer("attention.sliding_window_pattern").value_or(2);
  const double attn_cap = r.find_number("attn_logit_softcapping").value_or(50.0);
  const double final_cap = r.find_number("final_logit_softcapping").value_or(30.0);
  if (hp.sliding_window < 1 || hp.sliding_window > INT32_MAX || period < 1 || !(attn_cap > 0) || !(final_cap > 0))
    throw Error(model.path() + ": " + r.full("attention.sliding_window") + " (" + std::to_string(hp.sliding_window) +
                "), " + r.full("attention.sliding_window_pattern") + " (" + std::to_string(period) + ") and the soft caps (" +
                std::to_string(attn_cap) + ", " + std::to_string(final_cap) + ") must be positive");
  hp.extra["swa_period"] = static_cast<double>(period);
  hp.extra["attn_logit_softcap"] = attn_cap;
  hp.extra["final_logit_softcap"] = final_cap;
  // In float, as llama.cpp computes them.
  hp.extra["embedding_scale"] = std::sqrt(static_cast<float>(hp.n_embd));
  const int64_t scalar = hp.n_layer == 46 ? hp.n_embd / hp.n_head : hp.head_dim;
  hp.extra["attention_scale"] = 1.0f / std::sqrt(static_cast<float>(scalar));
  return hp;
}

}  // namespace

ArchTemplate gemma2_template() {
  return {
      .name = "gemma2",
      .description = "Gemma 2: scaled embeddings, sandwich norms, soft-capped attention with a window on alternate "
                     "layers, GeGLU, soft-capped logits",
      .embedding = token_embedding(),
      .block = {{rms_norm("attn_norm"), rope_attention({}), rms_norm("post_attention_norm")},
                // swiglu_ffn's three maps, gated by the model's activation: GeGLU.
                {rms_norm("ffn_norm"), swiglu_ffn(), rms_norm("post_ffw_norm")}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_gemma2,
      .metadata_keys = gemma2_keys(),
  };
}

}  // namespace semline::archs
