// The llama-lineage decoders of Hugging Face (LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM) in GGUF terms, as
// llama.cpp's converter writes them: config.json's keys become {arch}.* metadata, model.layers.L.* tensors become
// blk.L.*, and the q/k projections of llama and mistral get their rows reordered. Hugging Face
// rotates a head's first half against its second half ("rotate_half"); llama.cpp's llama arch
// rotates adjacent pairs, so its converter permutes each head's rows, (half, i) -> (i, half). The
// Qwen, Phi-3 and Gemma 2 archs rotate halves (NeoX) in llama.cpp too and keep the rows. Gemma's
// norms scale by 1 + w; the converter stores 1 + w, and so does this reader.
#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <numbers>

#include "core/model/hf_json.h"
#include "core/model/hf_layout.h"
#include "semline/error.h"

namespace semline::hf {

namespace {

struct Family {
  const char* model_type;
  const char* architecture;
  const char* arch;  // llama.cpp's
  bool permute_qk;
};

constexpr Family kFamilies[] = {
    {"llama", "LlamaForCausalLM", "llama", true},
    {"mistral", "MistralForCausalLM", "llama", true},
    {"qwen2", "Qwen2ForCausalLM", "qwen2", false},
    {"qwen3", "Qwen3ForCausalLM", "qwen3", false},
    {"phi3", "Phi3ForCausalLM", "phi3", false},
    {"gemma2", "Gemma2ForCausalLM", "gemma2", false},
};

const Family* family_of(std::string_view model_type) {
  for (const Family& f : kFamilies)
    if (model_type == f.model_type) return &f;
  return nullptr;
}

struct DecoderConfig : DecoderShape {
  const Family* family = nullptr;
  std::optional<int64_t> head_dim;  // config.json's, when it gives one
  int64_t rope_dim = 0;
  double rms_eps = 0, rope_theta = 10000.0;
  std::optional<double> linear_rope_factor;
  std::vector<float> rope_freqs;  // Llama 3.1's scaling, as llama.cpp computes it
  std::optional<int64_t> sliding_window, original_ctx;
  double attn_softcap = 0, final_softcap = 0;  // gemma2
};

// Llama 3.1's "llama3" RoPE scaling as llama.cpp's converter turns it into rope_freqs.weight: one
// divisor per rotated pair, 1 for short wavelengths, `factor` for long ones, smoothed between.
std::vector<float> llama3_rope_divisors(const json& rope, int64_t head_dim, double theta, const std::string& name) {
  const double factor = find_positive_number(rope, "factor", name).value_or(8.0);
  const double low = find_positive_number(rope, "low_freq_factor", name).value_or(1.0);
  const double high = find_positive_number(rope, "high_freq_factor", name).value_or(4.0);
  const double old_ctx = static_cast<double>(find_positive(rope, "original_max_position_embeddings", name).value_or(8192));
  if (!(high > low))
    throw Error(fmt::format("{}: rope_scaling.high_freq_factor ({}) must exceed low_freq_factor ({})", name, high, low));
  // In float32, as the converter's torch arithmetic.
  const float low_wavelen = static_cast<float>(old_ctx / low), high_wavelen = static_cast<float>(old_ctx / high);
  const float f = static_cast<float>(factor), span = static_cast<float>(high - low);
  std::vector<float> divisors;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const float freq = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(i) / static_cast<float>(head_dim));
    const float wavelen = static_cast<float>(2 * std::numbers::pi) / freq;
    if (wavelen < high_wavelen) divisors.push_back(1.0f);
    else if (wavelen > low_wavelen) divisors.push_back(f);
    else {
      const float smooth = (static_cast<float>(old_ctx) / wavelen - static_cast<float>(low)) / span;
      divisors.push_back(1.0f / ((1.0f - smooth) / f + smooth));
    }
  }
  return divisors;
}

void read_rope_scaling(const json& j, DecoderConfig& c, const std::string& name) {
  // transformers 5 names it rope_parameters (with rope_theta inside); 4.x rope_scaling.
  const char* key = find(j, "rope_parameters") ? "rope_parameters" : "rope_scaling";
  const json* rope = find(j, key);
  if (!rope) return;
  if (!rope->is_object()) throw Error(fmt::format("{}: {} = {} must be an object or null", name, key, rope->dump()));
  if (auto theta = find_positive_number(*rope, "rope_theta", name)) c.rope_theta = *theta;
  std::string type = find_string(*rope, "rope_type", name).value_or(find_string(*rope, "type", name).value_or("default"));
  if (type == "default") return;
  if (type == "linear") {
    c.linear_rope_factor = find_positive_number(*rope, "factor", name);
    if (!c.linear_rope_factor) throw Error(fmt::format("{}: {}.rope_type linear needs a factor", name, key));
  } else if (type == "llama3") {
    c.rope_freqs = llama3_rope_divisors(*rope, c.head_dim.value_or(c.n_embd / c.n_head), c.rope_theta, name);
  } else {
    throw Error(fmt::format("{}: {}.rope_type \"{}\" is not supported (valid: default, linear, llama3){}", name, key,
                            type,
                            type == "longrope" || type == "su" ? "; Phi-3's 128k models use LongRoPE"
                            : type == "yarn"                   ? "; YaRN is not implemented"
                                                               : ""));
  }
}

DecoderConfig parse(const json& j, const std::string& name) {
  DecoderConfig c;
  const std::string type = find_string(j, "model_type", name).value_or("");
  c.family = family_of(type);
  if (!c.family) throw Error(name + ": model_type \"" + type + "\" is not one of " + decoder_architectures());
  check_architecture(j, type, c.family->architecture, name);
  constexpr std::string_view hint =
      " (a decoder's config.json has hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, "
      "vocab_size and rms_norm_eps)";
  c.n_embd = positive(j, "hidden_size", name, {}, hint);
  c.n_ff = positive(j, "intermediate_size", name, {}, hint);
  c.n_layer = positive(j, "num_hidden_layers", name, {}, hint);
  c.n_head = positive(j, "num_attention_heads", name, {}, hint);
  c.n_head_kv = positive(j, "num_key_value_heads", name, c.n_head);
  c.vocab_size = positive(j, "vocab_size", name, {}, hint);
  c.n_ctx = positive(j, "max_position_embeddings", name, 2048);
  c.head_dim = find_positive(j, "head_dim", name);
  if (!c.head_dim && c.n_embd % c.n_head)
    throw Error(fmt::format("{}: hidden_size {} is not a multiple of num_attention_heads {}, and no head_dim is given",
                            name, c.n_embd, c.n_head));
  if (c.n_head % c.n_head_kv)
    throw Error(fmt::format("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", name, c.n_head,
                            c.n_head_kv));
  const auto eps = find_positive_number(j, "rms_norm_eps", name);
  if (!eps) throw Error(fmt::format("{}: key 'rms_norm_eps' is missing{}", name, hint));
  c.rms_eps = *eps;
  c.rope_theta = find_positive_number(j, "rope_theta", name).value_or(c.rope_theta);
  read_rope_scaling(j, c, name);

  const bool gemma = std::string_view(c.family->arch) == "gemma2";
  // Gemma 2 gates with the tanh GELU (hidden_activation; older configs say hidden_act), the rest
  // with silu.
  const std::string want_act = gemma ? "gelu_pytorch_tanh" : "silu";
  const std::string act = find_string(j, gemma ? "hidden_activation" : "hidden_act", name)
                              .value_or(find_string(j, "hidden_act", name).value_or(want_act));
  if (act != want_act)
    throw Error(name + ": " + (gemma ? "hidden_activation" : "hidden_act") + " \"" + act + "\" is not supported; " +
                c.family->architecture + " gates with " + want_act);
  if (flag(j, "attention_bias", false, name) && c.family->permute_qk)
    throw Error(name + ": attention_bias = true (q/k/v/o biases) is not supported by the llama arch");
  if (flag(j, "mlp_bias", false, name)) throw Error(name + ": mlp_bias = true is not supported");

  const int64_t head_dim = c.head_dim.value_or(c.n_embd / c.n_head);
  c.rope_dim = head_dim;
  if (auto f = find_positive_number(j, "partial_rotary_factor", name))
    c.rope_dim = static_cast<int64_t>(*f * static_cast<double>(c.n_embd)) / c.n_head;
  const std::string_view arch = c.family->arch;
  if (arch == "qwen2" || arch == "qwen3") {
    // Qwen's sliding window applies only with use_sliding_window, which llama.cpp does not run.
    if (flag(j, "use_sliding_window", false, name))
      throw Error(name + ": use_sliding_window = true is not supported (Qwen's window above max_window_layers)");
  } else if (arch == "phi3") {
    c.sliding_window = find_positive(j, "sliding_window", name).value_or(0);
    c.original_ctx = find_positive(j, "original_max_position_embeddings", name);
  } else if (gemma) {
    // llama.cpp scales the scores by 1 / sqrt(head_dim), by n_embd / n_head for the 27B (46
    // layers): a query_pre_attn_scalar other than that is another model.
    const int64_t head = c.head_dim.value_or(c.n_embd / c.n_head);
    const int64_t scalar = c.n_layer == 46 ? c.n_embd / c.n_head : head;
    if (auto q = find_positive(j, "query_pre_attn_scalar", name); q && *q != scalar)
      throw Error(fmt::format("{}: query_pre_attn_scalar {} is not {} (the head size, or n_embd / n_head for the 27B): "
                              "llama.cpp's gemma2 scales the scores by 1 / sqrt({})",
                              name, *q, scalar, scalar));
    for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"})
      if (!find_positive_number(j, key, name))
        throw Error(name + ": " + key + " is absent or null (no soft-capping), which llama.cpp's gemma2 does not run");
    c.attn_softcap = *find_positive_number(j, "attn_logit_softcapping", name);
    c.final_softcap = *find_positive_number(j, "final_logit_softcapping", name);
    c.sliding_window = find_positive(j, "sliding_window", name).value_or(4096);
  } else if (auto w = find_positive(j, "sliding_window", name)) {
    c.sliding_window = *w;  // Mistral 7B v0.1: honoured by the llama arch's attention.sliding_window
  }
  return c;
}

Placement place_decoder(const DecoderConfig& c, const std::string& hf_name, const std::string& file) {
  using Op = Placement::Op;
  const bool gemma = std::string_view(c.family->arch) == "gemma2";
  const Op norm_op = gemma ? Op::PlusOne : Op::Keep;
  if (hf_name == "model.embed_tokens.weight") return {"token_embd.weight"};
  if (hf_name == "model.norm.weight") return {"output_norm.weight", norm_op};
  if (hf_name == "lm_head.weight") return gemma ? Placement{"", Op::Skip} : Placement{"output.weight"};  // tied
  // Gemma 2's four norms: post_attention_layernorm is its post norm, pre_feedforward_layernorm the
  // feed-forward's input norm.
  static const std::pair<const char*, const char*> gemma_norms[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "post_attention_norm.weight"},
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"}};
  struct Block {
    const char* hf;
    const char* gguf;
    int permute;  // 0 none, 1 the q heads, 2 the kv heads
  };
  static const Block block[] = {
      {"input_layernorm.weight", "attn_norm.weight", 0},
      {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
      {"self_attn.q_proj.weight", "attn_q.weight", 1},
      {"self_attn.k_proj.weight", "attn_k.weight", 2},
      {"self_attn.v_proj.weight", "attn_v.weight", 0},
      {"self_attn.q_proj.bias", "attn_q.bias", 1},
      {"self_attn.k_proj.bias", "attn_k.bias", 2},
      {"self_attn.v_proj.bias", "attn_v.bias", 0},
      {"self_attn.o_proj.weight", "attn_output.weight", 0},
      {"self_attn.qkv_proj.weight", "attn_qkv.weight", 0},
      {"self_attn.q_norm.weight", "attn_q_norm.weight", 0},
      {"self_attn.k_norm.weight", "attn_k_norm.weight", 0},
      {"mlp.gate_proj.weight", "ffn_gate.weight", 0},
      {"mlp.up_proj.weight", "ffn_up.weight", 0},
      {"mlp.gate_up_proj.weight", "ffn_up.weight", 0},  // Phi-3: gate rows first, as llama.cpp keeps them
      {"mlp.down_proj.weight", "ffn_down.weight", 0},
  };
  if (auto [layer, rest] = block_of(hf_name, "model.layers.", hf_name, c.n_layer, "num_hidden_layers", file);
      layer >= 0) {
    if (rest == "self_attn.rotary_emb.inv_freq") return {"", Op::Skip};  // a buffer older checkpoints store
    if (gemma)
      for (const auto& [hf, gguf] : gemma_norms)
        if (rest == hf) return {fmt::format("blk.{}.{}", layer, gguf), Op::PlusOne};
    for (const Block& b : block)
      if (rest == b.hf) {
        const std::string name = fmt::format("blk.{}.{}", layer, b.gguf);
        if (b.permute && c.family->permute_qk)
          return {name, Op::PermuteHeads, b.permute == 1 ? c.n_head : c.n_head_kv, c.head_dim.value_or(c.n_embd / c.n_head)};
        return {name};
      }
  }
  throw Error(fmt::format("{}: tensor '{}' is not part of the {} layout (model.embed_tokens, model.norm, lm_head, "
                          "model.layers.N.{{input_layernorm, post_attention_layernorm, self_attn.{{q,k,v,o}}_proj, "
                          "mlp.{{gate,up,down}}_proj, ...}})",
                          file, hf_name, c.family->architecture));
}

}  // namespace

bool decoder_serves(std::string_view model_type) { return family_of(model_type) != nullptr; }

std::string decoder_architectures() { return class_list(kFamilies); }

Layout decoder_layout(std::string_view config_text, const std::string& name) {
  const json j = parse_object(config_text, name);
  const DecoderConfig c = parse(j, name);
  Layout l = layout_of_class(j, c.family->architecture, c.family->arch, c.vocab_size, name);
  l.write_meta = [c](OwnedMeta& meta) {
    const std::string a = c.family->arch;
    write_shape(meta, a, c);
    meta.add_f32(a + ".rope.freq_base", c.rope_theta);
    meta.add_f32(a + ".attention.layer_norm_rms_epsilon", c.rms_eps);
    if (c.head_dim) {
      meta.add_u32(a + ".attention.key_length", static_cast<uint64_t>(*c.head_dim));
      meta.add_u32(a + ".attention.value_length", static_cast<uint64_t>(*c.head_dim));
    }
    if (c.linear_rope_factor) {
      meta.add_string(a + ".rope.scaling.type", "linear");
      meta.add_f32(a + ".rope.scaling.factor", *c.linear_rope_factor);
    }
    if (a == "llama") meta.add_u32(a + ".vocab_size", static_cast<uint64_t>(c.vocab_size));
    // llama.cpp's converter writes it for llama and phi3; for the rest it is the head size it defaults to.
    meta.add_u32(a + ".rope.dimension_count", static_cast<uint64_t>(c.rope_dim));
    if (c.original_ctx) meta.add_u32(a + ".rope.scaling.original_context_length", static_cast<uint64_t>(*c.original_ctx));
    if (c.sliding_window) meta.add_u32(a + ".attention.sliding_window", static_cast<uint64_t>(*c.sliding_window));
    if (c.attn_softcap > 0) {  // Gemma 2, whose window is on the even layers (transformers' is_sliding)
      meta.add_f32(a + ".attn_logit_softcapping", c.attn_softcap);
      meta.add_f32(a + ".final_logit_softcapping", c.final_softcap);
      meta.add_u32(a + ".attention.sliding_window_pattern", 2);
    }
  };
  l.place = [c](const std::string& hf_name, const std::string& file) { return place_decoder(c, hf_name, file); };
  if (!c.rope_freqs.empty()) l.generated.emplace_back("rope_freqs.weight", c.rope_freqs);
  return l;
}

}  // namespace semline::hf
