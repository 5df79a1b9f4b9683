#include "core/model/hf_config.h"

#include <spdlog/fmt/fmt.h>

#include <nlohmann/json.hpp>

#include "semline/error.h"

namespace semline::hf {

namespace {

using json = nlohmann::json;

json parse_object(std::string_view text, const std::string& name) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(name + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(name + ": JSON " + j.type_name() + ", expected an object");
  return j;
}

// Sizes are recorded as u32 metadata; none of a real GPT-2 comes near that.
constexpr uint64_t kMaxSize = uint64_t{1} << 31;

int64_t positive(const json& j, const char* key, const std::string& name, std::optional<int64_t> fallback = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback && static_cast<uint64_t>(*fallback) < kMaxSize) return *fallback;
    if (fallback)
      throw Error(name + ": " + key + " is absent and its default, " + std::to_string(*fallback) +
                  ", is not below 2^31");
    throw Error(name + ": key '" + key + "' is missing (a GPT-2 config.json has n_embd, n_layer, n_head, "
                "n_positions and vocab_size)");
  }
  if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() >= kMaxSize)
    throw Error(name + ": " + key + " = " + it->dump() + " must be a positive integer below 2^31");
  return static_cast<int64_t>(it->get<uint64_t>());
}

bool flag(const json& j, const char* key, bool fallback, const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw Error(name + ": " + key + " = " + it->dump() + " must be true or false");
  return it->get<bool>();
}

std::optional<int64_t> token_id(const json& j, const char* key, const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_unsigned() || it->get<uint64_t>() >= kMaxSize)
    throw Error(name + ": " + key + " = " + it->dump() + " must be null or a token id");
  return static_cast<int64_t>(it->get<uint64_t>());
}

}  // namespace

Gpt2Config parse_gpt2_config(std::string_view text, const std::string& name) {
  const json j = parse_object(text, name);
  if (auto it = j.find("model_type"); it != j.end() && *it != "gpt2")
    throw Error(name + ": model_type " + it->dump() + " is not served; the Hugging Face loader reads GPT-2 "
                "(model_type \"gpt2\")");
  Gpt2Config c;
  c.n_embd = positive(j, "n_embd", name);
  c.n_layer = positive(j, "n_layer", name);
  c.n_head = positive(j, "n_head", name);
  c.n_positions = positive(j, "n_positions", name);
  c.vocab_size = positive(j, "vocab_size", name);
  c.n_inner = positive(j, "n_inner", name, 4 * c.n_embd);
  if (auto it = j.find("layer_norm_epsilon"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0))
      throw Error(name + ": layer_norm_epsilon = " + it->dump() + " must be a positive number");
    c.layer_norm_epsilon = it->get<double>();
  }
  std::string act = "gelu_new";  // GPT2Config's default
  if (auto it = j.find("activation_function"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw Error(name + ": activation_function = " + it->dump() + " must be a string");
    act = it->get<std::string>();
  }
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

}  // namespace semline::hf
