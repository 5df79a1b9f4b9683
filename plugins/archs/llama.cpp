// The llama family as data: Llama 1/2/3, TinyStories (llama2.c), and the synthetic llama models.
// Pre-norm blocks of RMSNorm -> attention (RoPE, GQA) and RMSNorm -> SwiGLU feed-forward.
#include <cstdint>

#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

// Mixtral-style mixture of experts: both counts or neither, 1 <= used <= count.
std::vector<std::string> llama_keys() {
  std::vector<std::string> keys = rope_decoder_keys();
  keys.insert(keys.end(), {"expert_count", "expert_used_count", "attention.sliding_window",
                           // Meta's original checkpoints' layout note; the tensors are named alike.
                           "tensor_data_layout"});
  return keys;
}

HParams read_llama(const ModelView& model) {
  static const std::vector<std::string> keys = llama_keys();
  HParamsReader r(model, "llama", keys);
  HParams hp = r.rope_decoder(RopeType::Normal);
  read_experts(model, r, hp);
  // Mistral-style models attend to the last sliding_window positions only (0 or absent: all).
  hp.sliding_window = read_sliding_window(model, r);
  return hp;
}

}  // namespace

void read_experts(const ModelView& model, const HParamsReader& r, HParams& hp) {
  const auto count = r.find_integer("expert_count"), used = r.find_integer("expert_used_count");
  const std::string ck = r.full("expert_count"), uk = r.full("expert_used_count");
  if (count.has_value() != used.has_value())
    throw Error(model.path() + ": metadata has " + (count ? ck : uk) + " but not " + (count ? uk : ck) +
                "; a mixture-of-experts model needs both (a dense model neither)");
  if (!count || (*count == 0 && *used == 0)) return;
  constexpr int64_t kMaxExperts = 4096;  // far above any published model; bounds the router
  if (*count < 1 || *count > kMaxExperts)
    throw Error(model.path() + ": " + ck + " = " + std::to_string(*count) + " must be 1.." +
                std::to_string(kMaxExperts));
  if (*used < 1 || *used > *count)
    throw Error(model.path() + ": " + uk + " = " + std::to_string(*used) + " must be 1.." + ck + " (" +
                std::to_string(*count) + ")");
  hp.n_expert = *count;
  hp.n_expert_used = *used;
}

StationSpec dense_or_moe_ffn() {
  // One SwiGLU network (dense) or a router and stacks of experts (Mixtral, Jamba's MoE layers):
  // all optional here, and each ffn variant's supports() names the weights it lacks.
  return {"ffn", StageKind::Ffn, "dense",
          {{"gate", "blk.{L}.ffn_gate.weight", {"n_embd", "n_ff"}, true},
           {"up", "blk.{L}.ffn_up.weight", {"n_embd", "n_ff"}, true},
           {"down", "blk.{L}.ffn_down.weight", {"n_ff", "n_embd"}, true},
           {"router", "blk.{L}.ffn_gate_inp.weight", {"n_embd", "n_expert"}, true},
           {"gate_exps", "blk.{L}.ffn_gate_exps.weight", {"n_embd", "n_ff", "n_expert"}, true},
           {"up_exps", "blk.{L}.ffn_up_exps.weight", {"n_embd", "n_ff", "n_expert"}, true},
           {"down_exps", "blk.{L}.ffn_down_exps.weight", {"n_ff", "n_embd", "n_expert"}, true}}};
}

StationSpec rope_attention(std::vector<TensorBinding> extra) {
  StationSpec st{"attention", StageKind::Attention, "flash",
                 {{"q", "blk.{L}.attn_q.weight", {"n_embd", "n_head*head_dim"}},
                  {"k", "blk.{L}.attn_k.weight", {"n_embd", "n_head_kv*head_dim"}},
                  {"v", "blk.{L}.attn_v.weight", {"n_embd", "n_head_kv*head_dim"}},
                  {"o", "blk.{L}.attn_output.weight", {"n_head*head_dim", "n_embd"}},
                  // Llama 3's per-dimension RoPE frequency divisors, one tensor for every layer.
                  {"rope_freqs", "rope_freqs.weight", {}, true}}};
  st.tensors.insert(st.tensors.end(), extra.begin(), extra.end());
  return st;
}

StationSpec token_embedding() {
  return {"token_embd", StageKind::Embedding, "lookup", {{"tokens", "token_embd.weight", {"n_embd", "n_vocab"}}}};
}

StationSpec rms_norm(const std::string& name, bool in_block) {
  return {name, StageKind::Norm, "rms", {{"weight", (in_block ? "blk.{L}." : "") + name + ".weight", {"n_embd"}}}};
}

std::vector<TensorBinding> qkv_biases(bool optional) {
  return {{"q_bias", "blk.{L}.attn_q.bias", {"n_head*head_dim"}, optional},
          {"k_bias", "blk.{L}.attn_k.bias", {"n_head_kv*head_dim"}, optional},
          {"v_bias", "blk.{L}.attn_v.bias", {"n_head_kv*head_dim"}, optional}};
}

StationSpec layer_norm(const std::string& name, bool in_block) {
  const std::string prefix = (in_block ? "blk.{L}." : "") + name;
  return {name, StageKind::Norm, "layer", {{"weight", prefix + ".weight", {"n_embd"}}, {"bias", prefix + ".bias", {"n_embd"}}}};
}

int64_t read_sliding_window(const ModelView& model, const HParamsReader& r) {
  const int64_t window = r.find_integer("attention.sliding_window").value_or(0);
  if (window > INT32_MAX)
    throw Error(model.path() + ": " + r.full("attention.sliding_window") + " = " + std::to_string(window) +
                " is above the most positions a sequence can hold (" + std::to_string(INT32_MAX) + ")");
  return window;
}

StationSpec gelu_mlp() {
  return {"ffn", StageKind::Ffn, "dense",
          {{"up", "blk.{L}.ffn_up.weight", {"n_embd", "n_ff"}},
           {"up_bias", "blk.{L}.ffn_up.bias", {"n_ff"}},
           {"down", "blk.{L}.ffn_down.weight", {"n_ff", "n_embd"}},
           {"down_bias", "blk.{L}.ffn_down.bias", {"n_embd"}}}};
}

StationSpec swiglu_ffn() {
  return {"ffn", StageKind::Ffn, "dense",
          {{"gate", "blk.{L}.ffn_gate.weight", {"n_embd", "n_ff"}},
           {"up", "blk.{L}.ffn_up.weight", {"n_embd", "n_ff"}},
           {"down", "blk.{L}.ffn_down.weight", {"n_ff", "n_embd"}}}};
}

ArchTemplate llama_template() {
  return {
      .name = "llama",
      .description = "Llama: RMSNorm, RoPE attention with GQA, SwiGLU feed-forward",
      .embedding = token_embedding(),
      .block = {
          {rms_norm("attn_norm"), rope_attention({})},
          {rms_norm("ffn_norm"), dense_or_moe_ffn()},
      },
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_llama,
      .metadata_keys = llama_keys(),
  };
}

}  // namespace semline::archs
