// The GPT-2 family as data, with llama.cpp's GGUF names: learned position rows added to the token
// embedding, pre-norm blocks of LayerNorm -> attention (one fused qkv map, biases, no rotary
// embedding) and LayerNorm -> GELU MLP (biases), a final LayerNorm and a head tied to the
// embedding unless the file carries output.weight.
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

// gpt2.feed_forward_activation: absent means the tanh approximation, what GPT-2 was trained with
// (HF's gelu_new) and what llama.cpp computes for the arch.
Activation read_activation(const ModelView& model, const HParamsReader& r) {
  const std::optional<std::string_view> v = r.find_string("feed_forward_activation");
  if (!v || *v == "gelu_tanh") return Activation::GeluTanh;
  if (*v == "gelu") return Activation::Gelu;
  throw Error(model.path() + ": " + r.full("feed_forward_activation") + " = '" + std::string(*v) +
              "' is not an activation of the gpt2 arch; valid: gelu (exact), gelu_tanh");
}

std::vector<std::string> gpt2_keys() {
  return {"context_length", "embedding_length", "feed_forward_length", "block_count", "vocab_size",
          "attention.head_count", "attention.layer_norm_epsilon", "feed_forward_activation"};
}

HParams read_gpt2(const ModelView& model) {
  static const std::vector<std::string> keys = gpt2_keys();
  HParamsReader r(model, "gpt2", keys);
  HParams hp = r.common();
  hp.n_ctx_train = r.integer("context_length");  // the number of learned position rows
  hp.norm_eps = r.number("attention.layer_norm_epsilon");
  hp.rope_type = RopeType::None;
  hp.ffn_act = read_activation(model, r);
  // A file without a vocabulary still says how many token rows it has.
  if (hp.n_vocab == 0)
    if (const Tensor* t = model.weight("token_embd.weight")) hp.n_vocab = t->ne[1];
  check_hparams(model, hp);
  if (hp.n_ctx_train <= 0)
    throw Error(model.path() + ": gpt2.context_length must be > 0: it is the number of learned positions");
  hp.head_dim = hp.n_embd / hp.n_head;
  return hp;
}

}  // namespace

ArchTemplate gpt2_template() {
  return {
      .name = "gpt2",
      .description = "GPT-2: learned positions, LayerNorm, fused-qkv attention with biases, GELU MLP",
      .embedding = {"token_embd", StageKind::Embedding, "lookup",
                    {{"tokens", "token_embd.weight", {"n_embd", "n_vocab"}},
                     {"positions", "position_embd.weight", {"n_embd", "n_ctx_train"}}}},
      // n_head_kv = n_head and n_head * head_dim = n_embd for the arch, so q | k | v is 3 n_embd wide.
      .block = {
          {layer_norm("attn_norm"),
           {"attention", StageKind::Attention, "flash",
            {{"qkv", "blk.{L}.attn_qkv.weight", {"n_embd", "3*n_embd"}},
             {"qkv_bias", "blk.{L}.attn_qkv.bias", {"3*n_embd"}},
             {"o", "blk.{L}.attn_output.weight", {"n_embd", "n_embd"}},
             {"o_bias", "blk.{L}.attn_output.bias", {"n_embd"}}}}},
          {layer_norm("ffn_norm"),
           gelu_mlp()},
      },
      .output_norm = layer_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_gpt2,
      .metadata_keys = gpt2_keys(),
  };
}

}  // namespace semline::archs
