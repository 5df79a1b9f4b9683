#include "core/model/hf_config.h"

#include <spdlog/fmt/fmt.h>

#include "core/model/hf_json.h"
#include "core/model/hf_layout.h"
#include "semline/error.h"

namespace semline::hf {


Gpt2Config parse_gpt2_config(std::string_view text, const std::string& name) {
  const json j = parse_object(text, name);
  if (auto it = j.find("model_type"); it != j.end() && *it != "gpt2")
    throw Error(name + ": model_type " + it->dump() + " is not served; the Hugging Face loader reads GPT-2 "
                "(model_type \"gpt2\")");
  Gpt2Config c;
  constexpr std::string_view hint =
      " (a GPT-2 config.json has n_embd, n_layer, n_head, n_positions and vocab_size)";
  c.n_embd = positive(j, "n_embd", name, {}, hint);
  c.n_layer = positive(j, "n_layer", name, {}, hint);
  c.n_head = positive(j, "n_head", name, {}, hint);
  c.n_positions = positive(j, "n_positions", name, {}, hint);
  c.vocab_size = positive(j, "vocab_size", name, {}, hint);
  c.n_inner = positive(j, "n_inner", name, 4 * c.n_embd);
  c.layer_norm_epsilon = find_positive_number(j, "layer_norm_epsilon", name).value_or(c.layer_norm_epsilon);
  const std::string act = find_string(j, "activation_function", name).value_or("gelu_new");  // GPT2Config's default
  if (act == "gelu") c.gelu_exact = true;
  else if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    throw Error(name + ": activation_function '" + act + "' is not supported; valid: gelu (exact), gelu_new, "
                "gelu_pytorch_tanh (the tanh approximation)");
  // Options of GPT2Config that compute another function than the one the gpt2 arch runs.
  if (!flag(j, "scale_attn_weights", true, name))
    throw Error(name + ": scale_attn_weights = false (attention without 1/sqrt(head_dim)) is not supported");
  if (flag(j, "scale_attn_by_inverse_layer_idx", false, name))
    throw Error(name + ": scale_attn_by_inverse_layer_idx = true is not supported");
  if (flag(j, "add_cross_attention", false, name))
    throw Error(name + ": add_cross_attention = true (an encoder-decoder GPT-2) is not supported");
  c.bos_token_id = token_id(j, "bos_token_id", name);
  c.eos_token_id = token_id(j, "eos_token_id", name);
  return c;
}

std::vector<std::string> parse_vocab_json(std::string_view text, const std::string& name) {
  const json j = parse_object(text, name);
  std::vector<std::string> tokens(j.size());
  std::vector<bool> seen(j.size(), false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number_unsigned())
      throw Error(name + ": the id of " + as_json_string(it.key()) + " is " + it->dump() + ", expected a token id");
    const uint64_t id = it->get<uint64_t>();
    if (id >= tokens.size())
      throw Error(fmt::format("{}: {} has id {}, outside 0..{}: the ids must number the {} entries without gaps", name,
                              as_json_string(it.key()), id, tokens.size() - 1, tokens.size()));
    if (seen[id])
      throw Error(fmt::format("{}: id {} is given to both {} and {}", name, id, as_json_string(tokens[id]),
                              as_json_string(it.key())));
    seen[id] = true;
    tokens[id] = it.key();
  }
  // n entries with distinct ids below n: every id is taken.
  return tokens;
}

std::vector<std::string> parse_merges(std::string_view text, const std::string& name) {
  std::vector<std::string> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string_view::npos)
      throw Error(fmt::format("{}: line {} is {}, expected two pieces separated by one space", name, line_no,
                              as_json_string(line)));
    merges.emplace_back(line);
  }
  return merges;
}

std::string as_json_string(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_one_utf8_char(std::string_view s) {
  if (s.empty()) return false;
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  size_t len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
  if (len == 0 || s.size() != len) return false;
  uint32_t cp = len == 1 ? c : c & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    if ((b(i) & 0xC0) != 0x80) return false;
    cp = cp << 6 | (b(i) & 0x3F);
  }
  const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= min[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

namespace {

Placement place_gpt2(const std::string& hf_name, int64_t n_layer, const std::string& file) {
  static const std::pair<const char*, const char*> top[] = {
      {"wte.weight", "token_embd.weight"}, {"wpe.weight", "position_embd.weight"},
      {"ln_f.weight", "output_norm.weight"}, {"ln_f.bias", "output_norm.bias"}};
  struct Block {
    const char* hf;
    const char* gguf;
    bool transpose;
  };
  static const Block block[] = {
      {"ln_1.weight", "attn_norm.weight", false},      {"ln_1.bias", "attn_norm.bias", false},
      {"attn.c_attn.weight", "attn_qkv.weight", true}, {"attn.c_attn.bias", "attn_qkv.bias", false},
      {"attn.c_proj.weight", "attn_output.weight", true}, {"attn.c_proj.bias", "attn_output.bias", false},
      {"ln_2.weight", "ffn_norm.weight", false},       {"ln_2.bias", "ffn_norm.bias", false},
      {"mlp.c_fc.weight", "ffn_up.weight", true},      {"mlp.c_fc.bias", "ffn_up.bias", false},
      {"mlp.c_proj.weight", "ffn_down.weight", true},  {"mlp.c_proj.bias", "ffn_down.bias", false}};
  using Op = Placement::Op;
  if (hf_name == "lm_head.weight") return {"output.weight"};
  std::string_view n = hf_name;
  if (n.rfind("transformer.", 0) == 0) n.remove_prefix(12);
  for (const auto& [h, g] : top)
    if (n == h) return {g};
  if (auto [layer, rest] = block_of(n, "h.", hf_name, n_layer, "n_layer", file); layer >= 0) {
    if (rest == "attn.bias" || rest == "attn.masked_bias") return {"", Op::Skip};
    for (const Block& b : block)
      if (rest == b.hf) return {fmt::format("blk.{}.{}", layer, b.gguf), b.transpose ? Op::Transpose : Op::Keep};
  }
  throw Error(file + ": tensor '" + hf_name + "' is not part of the GPT-2 layout (transformer.wte, wpe, ln_f, " +
              "h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}.{weight, bias}, lm_head.weight)");
}

}  // namespace

std::pair<int64_t, std::string_view> block_of(std::string_view n, std::string_view prefix, const std::string& hf_name,
                                              int64_t n_layer, std::string_view layers_key, const std::string& file) {
  if (n.substr(0, prefix.size()) != prefix) return {-1, {}};
  n.remove_prefix(prefix.size());
  size_t digits = 0;
  while (digits < n.size() && digits < 7 && n[digits] >= '0' && n[digits] <= '9') ++digits;
  if (digits == 0 || digits >= n.size() || n[digits] != '.' || (digits > 1 && n[0] == '0')) return {-1, {}};
  const int64_t layer = std::stoll(std::string(n.substr(0, digits)));
  if (layer >= n_layer)
    throw Error(fmt::format("{}: tensor '{}' belongs to block {}, but config.json has {} {}", file, hf_name, layer,
                            layers_key, n_layer));
  return {layer, n.substr(digits + 1)};
}

Layout gpt2_layout(std::string_view config_text, const std::string& name) {
  const Gpt2Config c = parse_gpt2_config(config_text, name);
  Layout l;
  l.label = "GPT-2";
  l.arch = "gpt2";
  l.vocab_size = c.vocab_size;
  l.bos_token_id = c.bos_token_id;
  l.eos_token_id = c.eos_token_id;
  l.write_meta = [c](OwnedMeta& meta) {
    meta.add_u32("gpt2.context_length", static_cast<uint64_t>(c.n_positions));
    meta.add_u32("gpt2.embedding_length", static_cast<uint64_t>(c.n_embd));
    meta.add_u32("gpt2.feed_forward_length", static_cast<uint64_t>(c.n_inner));
    meta.add_u32("gpt2.block_count", static_cast<uint64_t>(c.n_layer));
    meta.add_u32("gpt2.attention.head_count", static_cast<uint64_t>(c.n_head));
    meta.add_f32("gpt2.attention.layer_norm_epsilon", c.layer_norm_epsilon);
    meta.add_string("gpt2.feed_forward_activation", c.gelu_exact ? "gelu" : "gelu_tanh");
  };
  l.place = [n_layer = c.n_layer](const std::string& hf_name, const std::string& file) {
    return place_gpt2(hf_name, n_layer, file);
  };
  return l;
}

void write_shape(OwnedMeta& meta, const std::string& a, const DecoderShape& s) {
  meta.add_u32(a + ".block_count", static_cast<uint64_t>(s.n_layer));
  meta.add_u32(a + ".context_length", static_cast<uint64_t>(s.n_ctx));
  meta.add_u32(a + ".embedding_length", static_cast<uint64_t>(s.n_embd));
  meta.add_u32(a + ".feed_forward_length", static_cast<uint64_t>(s.n_ff));
  meta.add_u32(a + ".attention.head_count", static_cast<uint64_t>(s.n_head));
  meta.add_u32(a + ".attention.head_count_kv", static_cast<uint64_t>(s.n_head_kv));
}

Layout layout_of_class(const json& config, const char* label, const char* arch, int64_t vocab_size,
                       const std::string& name) {
  Layout l;
  l.label = label;
  l.arch = arch;
  l.vocab_size = vocab_size;
  l.bos_token_id = token_id(config, "bos_token_id", name);
  l.eos_token_id = token_id(config, "eos_token_id", name);
  return l;
}

Layout layout_of(std::string_view config_text, const std::string& name) {
  const json j = parse_object(config_text, name);
  const std::string type = find_string(j, "model_type", name).value_or("gpt2");
  if (type == "gpt2") return gpt2_layout(config_text, name);
  if (decoder_serves(type)) return decoder_layout(config_text, name);
  if (layernorm_serves(type)) return layernorm_layout(config_text, name);
  throw Error(name + ": model_type \"" + type + "\" is not served; the Hugging Face loader reads \"gpt2\", " +
              decoder_architectures() + ", " + layernorm_architectures());
}

}  // namespace semline::hf
