// The LayerNorm decoders of Hugging Face (Starcoder2ForCausalLM, StableLmForCausalLM,
// GPTNeoXForCausalLM) in GGUF terms, as llama.cpp's converter writes them. All three normalise
// with LayerNorm (weight and bias) and rotate a head's halves (NeoX RoPE; StableLM and GPT-NeoX
// over a leading part of each head only), as llama.cpp's archs do, so no q/k rows move. GPT-NeoX's
// fused query_key_value holds each head's q, k and v rows together; llama.cpp's gptneox wants the
// q rows of every head, then the k rows, then the v rows, and its converter regroups them (the
// bias too): Placement::Op::GroupQkv.
#include <spdlog/fmt/fmt.h>

#include <span>

#include "core/model/hf_json.h"
#include "core/model/hf_layout.h"
#include "semline/error.h"

namespace semline::hf {

namespace {

enum class Kind { StarCoder2, StableLm, GptNeoX };

struct Family {
  const char* model_type;
  const char* architecture;
  const char* arch;  // llama.cpp's
  Kind kind;
};

constexpr Family kFamilies[] = {
    {"starcoder2", "Starcoder2ForCausalLM", "starcoder2", Kind::StarCoder2},
    {"stablelm", "StableLmForCausalLM", "stablelm", Kind::StableLm},
    {"gpt_neox", "GPTNeoXForCausalLM", "gptneox", Kind::GptNeoX},
};

const Family* family_of(std::string_view model_type) {
  for (const Family& f : kFamilies)
    if (model_type == f.model_type) return &f;
  return nullptr;
}

struct Config : DecoderShape {
  const Family* family = nullptr;
  int64_t rope_dim = 0;
  double eps = 1e-5, rope_theta = 10000.0;
  std::optional<int64_t> sliding_window;   // StarCoder2's
  std::optional<bool> parallel_residual;  // written where the converter writes it (StableLM, GPT-NeoX)
};

// The RoPE options: plain RoPE only (transformers 5 keeps rope_theta and partial_rotary_factor in
// rope_parameters, 4.x at the top level).
void read_rope(const json& j, Config& c, const std::string& name) {
  const bool neox = c.family->kind == Kind::GptNeoX;
  c.rope_theta = find_positive_number(j, neox ? "rotary_emb_base" : "rope_theta", name)
                     .value_or(find_positive_number(j, "rope_theta", name).value_or(c.rope_theta));
  double rotary = c.family->kind == Kind::StarCoder2 ? 1.0 : 0.25;  // the configs' defaults
  if (auto f = find_positive_number(j, neox ? "rotary_pct" : "partial_rotary_factor", name)) rotary = *f;
  const char* key = find(j, "rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (const json* rope = find(j, key)) {
    if (!rope->is_object()) throw Error(fmt::format("{}: {} = {} must be an object or null", name, key, rope->dump()));
    if (auto theta = find_positive_number(*rope, "rope_theta", name)) c.rope_theta = *theta;
    if (auto f = find_positive_number(*rope, "partial_rotary_factor", name)) rotary = *f;
    const std::string type =
        find_string(*rope, "rope_type", name).value_or(find_string(*rope, "type", name).value_or("default"));
    if (type != "default")
      throw Error(fmt::format("{}: {}.rope_type \"{}\" is not supported for {} (llama.cpp's {} runs plain RoPE)", name,
                              key, type, c.family->architecture, c.family->arch));
  }
  if (rotary > 1.0)
    throw Error(fmt::format("{}: the rotated fraction of a head, {}, must be at most 1", name, rotary));
  // As the converter computes it: the fraction of the head size, truncated.
  c.rope_dim = static_cast<int64_t>(rotary * static_cast<double>(c.n_embd / c.n_head));
  if (c.rope_dim < 2 || c.rope_dim % 2)
    throw Error(fmt::format("{}: {} of a head of {} rotates {} dimensions; RoPE rotates an even number, at least 2",
                            name, rotary, c.n_embd / c.n_head, c.rope_dim));
}

Config parse(const json& j, const std::string& name) {
  Config c;
  const std::string type = find_string(j, "model_type", name).value_or("");
  c.family = family_of(type);
  if (!c.family) throw Error(name + ": model_type \"" + type + "\" is not one of " + layernorm_architectures());
  check_architecture(j, type, c.family->architecture, name);
  const Kind kind = c.family->kind;
  constexpr std::string_view hint =
      " (the config.json of a decoder has hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and "
      "vocab_size)";
  c.n_embd = positive(j, "hidden_size", name, {}, hint);
  c.n_ff = positive(j, "intermediate_size", name, {}, hint);
  c.n_layer = positive(j, "num_hidden_layers", name, {}, hint);
  c.n_head = positive(j, "num_attention_heads", name, {}, hint);
  c.vocab_size = positive(j, "vocab_size", name, {}, hint);
  c.n_ctx = positive(j, "max_position_embeddings", name, 2048);
  // GPT-NeoX has one kv head per head; its config has no key for it.
  c.n_head_kv = kind == Kind::GptNeoX ? c.n_head : positive(j, "num_key_value_heads", name, c.n_head);
  if (c.n_embd % c.n_head)
    throw Error(fmt::format("{}: hidden_size {} is not a multiple of num_attention_heads {}", name, c.n_embd, c.n_head));
  if (c.n_head % c.n_head_kv)
    throw Error(fmt::format("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", name, c.n_head,
                            c.n_head_kv));
  c.eps = find_positive_number(j, kind == Kind::StarCoder2 ? "norm_epsilon" : "layer_norm_eps", name).value_or(c.eps);
  read_rope(j, c, name);

  const std::string act = find_string(j, "hidden_act", name).value_or(kind == Kind::StarCoder2 ? "gelu_pytorch_tanh"
                                                                      : kind == Kind::StableLm   ? "silu"
                                                                                                 : "gelu");
  switch (kind) {
    case Kind::StarCoder2:
      if (act != "gelu_pytorch_tanh" && act != "gelu_new")
        throw Error(name + ": hidden_act \"" + act + "\" is not supported; llama.cpp's starcoder2 runs the tanh GELU "
                    "(gelu_pytorch_tanh, gelu_new)");
      if (!flag(j, "use_bias", true, name))
        throw Error(name + ": use_bias = false is not supported; llama.cpp's starcoder2 has biases on every map");
      c.sliding_window = find_positive(j, "sliding_window", name);
      break;
    case Kind::StableLm:
      if (act != "silu")
        throw Error(name + ": hidden_act \"" + act + "\" is not supported; StableLmForCausalLM gates with silu");
      if (flag(j, "qk_layernorm", false, name))
        throw Error(name + ": qk_layernorm = true (StableLM 2 12B's per-head q/k LayerNorms) is not supported");
      c.parallel_residual = flag(j, "use_parallel_residual", false, name);
      if (*c.parallel_residual)
        throw Error(name + ": use_parallel_residual = true (StableLM 2 12B) is not supported");
      break;
    case Kind::GptNeoX:
      // llama.cpp's gptneox runs the tanh GELU, whatever hidden_act says; Pythia's exact "gelu"
      // differs from it by at most 5e-4 per activation. The GGUF follows the converter.
      if (act != "gelu" && act != "gelu_new" && act != "gelu_fast" && act != "gelu_pytorch_tanh")
        throw Error(name + ": hidden_act \"" + act + "\" is not supported; llama.cpp's gptneox runs a GELU "
                    "(gelu, gelu_new, gelu_fast, gelu_pytorch_tanh)");
      if (!flag(j, "attention_bias", true, name))
        throw Error(name + ": attention_bias = false is not supported; llama.cpp's gptneox has q/k/v and output biases");
      c.parallel_residual = flag(j, "use_parallel_residual", true, name);
      break;
  }
  return c;
}

Placement place(const Config& c, const std::string& hf_name, const std::string& file) {
  using Op = Placement::Op;
  const Kind kind = c.family->kind;
  const bool neox = kind == Kind::GptNeoX;
  struct Name {
    const char* hf;
    const char* gguf;
  };
  static const Name top[] = {{"model.embed_tokens.weight", "token_embd.weight"},
                             {"model.norm.weight", "output_norm.weight"},
                             {"model.norm.bias", "output_norm.bias"},
                             {"lm_head.weight", "output.weight"}};
  static const Name neox_top[] = {{"gpt_neox.embed_in.weight", "token_embd.weight"},
                                  {"gpt_neox.final_layer_norm.weight", "output_norm.weight"},
                                  {"gpt_neox.final_layer_norm.bias", "output_norm.bias"},
                                  {"embed_out.weight", "output.weight"}};
  // A block's tensors; StarCoder2 has a bias on every map, StableLM on q, k and v where
  // use_qkv_bias says.
  static const Name attention[] = {
      {"input_layernorm.weight", "attn_norm.weight"},  {"input_layernorm.bias", "attn_norm.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"post_attention_layernorm.bias", "ffn_norm.bias"},
      {"self_attn.q_proj.weight", "attn_q.weight"},    {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},    {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},        {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"}};
  static const Name starcoder2[] = {{"self_attn.o_proj.bias", "attn_output.bias"},
                                    {"mlp.c_fc.weight", "ffn_up.weight"},
                                    {"mlp.c_fc.bias", "ffn_up.bias"},
                                    {"mlp.c_proj.weight", "ffn_down.weight"},
                                    {"mlp.c_proj.bias", "ffn_down.bias"}};
  static const Name stablelm[] = {{"mlp.gate_proj.weight", "ffn_gate.weight"},
                                  {"mlp.up_proj.weight", "ffn_up.weight"},
                                  {"mlp.down_proj.weight", "ffn_down.weight"}};
  static const Name gptneox[] = {
      {"input_layernorm.weight", "attn_norm.weight"},         {"input_layernorm.bias", "attn_norm.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"post_attention_layernorm.bias", "ffn_norm.bias"},
      {"attention.dense.weight", "attn_output.weight"},       {"attention.dense.bias", "attn_output.bias"},
      {"mlp.dense_h_to_4h.weight", "ffn_up.weight"},          {"mlp.dense_h_to_4h.bias", "ffn_up.bias"},
      {"mlp.dense_4h_to_h.weight", "ffn_down.weight"},        {"mlp.dense_4h_to_h.bias", "ffn_down.bias"}};

  for (const Name& n : neox ? std::span<const Name>(neox_top) : std::span<const Name>(top))
    if (hf_name == n.hf) return {n.gguf};
  if (auto [layer, rest] = block_of(hf_name, neox ? "gpt_neox.layers." : "model.layers.", hf_name, c.n_layer,
                                    "num_hidden_layers", file);
      layer >= 0) {
    auto blk = [l = layer](const char* gguf) { return fmt::format("blk.{}.{}", l, gguf); };
    if (neox) {
      // Buffers older checkpoints store: the causal mask, its fill value, RoPE's frequencies.
      if (rest == "attention.bias" || rest == "attention.masked_bias" || rest == "attention.rotary_emb.inv_freq")
        return {"", Op::Skip};
      if (rest == "attention.query_key_value.weight" || rest == "attention.query_key_value.bias")
        return {blk(rest.ends_with("weight") ? "attn_qkv.weight" : "attn_qkv.bias"), Op::GroupQkv, c.n_head,
                c.n_embd / c.n_head};
      for (const Name& n : gptneox)
        if (rest == n.hf) return {blk(n.gguf)};
    } else {
      if (rest == "self_attn.rotary_emb.inv_freq") return {"", Op::Skip};
      for (const Name& n : attention)
        if (rest == n.hf) return {blk(n.gguf)};
      for (const Name& n : kind == Kind::StarCoder2 ? std::span<const Name>(starcoder2) : std::span<const Name>(stablelm))
        if (rest == n.hf) return {blk(n.gguf)};
    }
  }
  const char* names = kind == Kind::GptNeoX
                          ? "gpt_neox.embed_in, gpt_neox.final_layer_norm, embed_out, gpt_neox.layers.N.{input_layernorm, "
                            "post_attention_layernorm, attention.query_key_value, attention.dense, mlp.dense_h_to_4h, "
                            "mlp.dense_4h_to_h}"
                      : kind == Kind::StarCoder2
                          ? "model.embed_tokens, model.norm, lm_head, model.layers.N.{input_layernorm, "
                            "post_attention_layernorm, self_attn.{q,k,v,o}_proj, mlp.c_fc, mlp.c_proj}"
                          : "model.embed_tokens, model.norm, lm_head, model.layers.N.{input_layernorm, "
                            "post_attention_layernorm, self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj}";
  throw Error(fmt::format("{}: tensor '{}' is not part of the {} layout ({})", file, hf_name, c.family->architecture,
                          names));
}

}  // namespace

bool layernorm_serves(std::string_view model_type) { return family_of(model_type) != nullptr; }

std::string layernorm_architectures() { return class_list(kFamilies); }

Layout layernorm_layout(std::string_view config_text, const std::string& name) {
  const json j = parse_object(config_text, name);
  const Config c = parse(j, name);
  Layout l = layout_of_class(j, c.family->architecture, c.family->arch, c.vocab_size, name);
  l.write_meta = [c](OwnedMeta& meta) {
    const std::string a = c.family->arch;
    // With the shape, GPT-NeoX's head_count_kv, which the converter leaves out (llama.cpp defaults
    // it to head_count), and below StableLM's rope.freq_base, also left out (10000 by default, as
    // every StableLM has): written here, they say the same.
    write_shape(meta, a, c);
    meta.add_f32(a + ".rope.freq_base", c.rope_theta);
    meta.add_u32(a + ".rope.dimension_count", static_cast<uint64_t>(c.rope_dim));
    meta.add_f32(a + ".attention.layer_norm_epsilon", c.eps);
    if (c.parallel_residual) meta.add_bool(a + ".use_parallel_residual", *c.parallel_residual);
    if (c.sliding_window) meta.add_u32(a + ".attention.sliding_window", static_cast<uint64_t>(*c.sliding_window));
  };
  l.place = [c](const std::string& hf_name, const std::string& file) { return place(c, hf_name, file); };
  return l;
}

}  // namespace semline::hf
