#include "common/hf_writer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "semline/error.h"

namespace semline::testing {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4;

const MetaValue* meta(const ModelView& m, const std::string& key) { return m.meta(key); }


std::vector<std::string> strings(const ModelView& m, const char* key) {
  const MetaValue* v = m.meta(key);
  if (!v) return {};
  return {v->strings.begin(), v->strings.end()};
}

std::vector<int32_t> types_of(const ModelView& m, size_t n) {
  const MetaValue* v = m.meta("tokenizer.ggml.token_type");
  std::vector<int32_t> types(n, kNormal);
  if (v)
    for (size_t i = 0; i < n; ++i) types[i] = v->at<int32_t>(i);
  return types;
}

// The characters of a UTF-8 text, as Python indexes a str.
std::vector<size_t> char_starts(const std::string& s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  return starts;
}

// SentencePieceExtractor's merges: for each piece (in id order) its splits into two pieces of the
// vocabulary, ordered by the ids of the halves; then all of them by the piece's score, highest
// first (a stable sort).
std::vector<std::string> spm_merges(const std::vector<std::string>& tokens, const std::vector<float>& scores) {
  std::unordered_map<std::string, size_t> id;
  for (size_t i = 0; i < tokens.size(); ++i) id.emplace(tokens[i], i);
  struct Merge {
    float score;
    size_t l, r;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& piece = tokens[i];
    std::vector<Merge> local;
    const std::vector<size_t> starts = char_starts(piece);
    for (size_t k = 1; k < starts.size(); ++k) {
      auto l = id.find(piece.substr(0, starts[k])), r = id.find(piece.substr(starts[k]));
      if (l != id.end() && r != id.end()) local.push_back({scores[i], l->second, r->second});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) { return std::pair(a.l, a.r) < std::pair(b.l, b.r); });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  std::vector<std::string> out;
  for (const Merge& m : merges) out.push_back(tokens[m.l] + " " + tokens[m.r]);
  return out;
}

constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json split(const char* pattern) {
  return {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
}

}  // namespace

json tokenizer_json_of(const ModelView& m) {
  const std::string model(meta(m, "tokenizer.ggml.model")->str);
  const std::vector<std::string> tokens = strings(m, "tokenizer.ggml.tokens");
  const std::vector<int32_t> types = types_of(m, tokens.size());
  json vocab = json::object(), added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    // llama.cpp's padding of a vocabulary to the model's rows is no token of Hugging Face's.
    if (tokens[i] == "[PAD" + std::to_string(i) + "]") continue;
    vocab[tokens[i]] = i;
    if (types[i] == kControl || types[i] == kUnknown || types[i] == kUserDefined)
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", types[i] == kUserDefined}, {"special", types[i] != kUserDefined}});
  }
  json j = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  if (model == "llama") {
    const MetaValue* s = m.meta("tokenizer.ggml.scores");
    std::vector<float> scores(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) scores[i] = s->at<float>(i);
    std::string unk;
    for (size_t i = 0; i < tokens.size(); ++i)
      if (types[i] == kUnknown && unk.empty() && vocab.contains(tokens[i])) unk = tokens[i];
    const MetaValue* prefix = m.meta("tokenizer.ggml.add_space_prefix");
    const bool add_prefix = !prefix || prefix->u != 0;
    json steps = json::array();
    if (add_prefix) steps.push_back({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
    steps.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}});
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", steps}};
    j["pre_tokenizer"] = nullptr;
    j["decoder"] = {{"type", "Sequence"},
                    {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                              {{"type", "ByteFallback"}},
                                              {{"type", "Fuse"}},
                                              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
    j["model"] = {{"type", "BPE"},         {"dropout", nullptr},   {"unk_token", unk.empty() ? json(nullptr) : json(unk)},
                  {"continuing_subword_prefix", nullptr},          {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},      {"byte_fallback", true}, {"ignore_merges", false},
                  {"vocab", vocab},        {"merges", spm_merges(tokens, scores)}};
    return j;
  }
  if (model != "gpt2") throw Error("hf_writer: tokenizer model " + model + " has no tokenizer.json form here");
  const std::string pre(meta(m, "tokenizer.ggml.pre") ? meta(m, "tokenizer.ggml.pre")->str : "gpt-2");
  bool ignore_merges = false;
  j["normalizer"] = nullptr;
  if (pre == "gpt-2") {
    j["pre_tokenizer"] = byte_level(true);
  } else if (pre == "llama-bpe") {
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({split(kLlama3Pattern), byte_level(false)})}};
    ignore_merges = true;
  } else if (pre == "qwen2") {
    j["normalizer"] = {{"type", "NFC"}};
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({split(kQwen2Pattern), byte_level(false)})}};
  } else if (pre == "starcoder") {
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)})}};
  } else {
    throw Error("hf_writer: pre-tokenizer " + pre + " has no tokenizer.json form here");
  }
  j["post_processor"] = byte_level(false);
  j["decoder"] = byte_level(true);
  // The pair form of transformers 4.45+ for the llama-bpe vocabulary, the string form for the rest.
  json merges = json::array();
  for (const std::string& mg : strings(m, "tokenizer.ggml.merges")) {
    const size_t sp = mg.find(' ');
    if (pre == "llama-bpe") merges.push_back(json::array({mg.substr(0, sp), mg.substr(sp + 1)}));
    else merges.push_back(mg);
  }
  j["model"] = {{"type", "BPE"},         {"dropout", nullptr},         {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},               {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},     {"byte_fallback", false},     {"ignore_merges", ignore_merges},
                {"vocab", vocab},        {"merges", merges}};
  return j;
}

json tokenizer_config_of(const ModelView& m) {
  const std::vector<std::string> tokens = strings(m, "tokenizer.ggml.tokens");
  json c = json::object();
  for (const auto& [key, name] : {std::pair{"tokenizer.ggml.bos_token_id", "bos_token"},
                                  std::pair{"tokenizer.ggml.eos_token_id", "eos_token"}})
    if (const MetaValue* v = m.meta(key)) c[name] = tokens.at(v->u);
  if (const MetaValue* v = m.meta("tokenizer.ggml.add_bos_token")) c["add_bos_token"] = v->u != 0;
  if (const MetaValue* v = m.meta("tokenizer.chat_template")) c["chat_template"] = std::string(v->str);
  return c;
}

namespace {

struct HfTensor {
  std::string name;
  std::vector<int64_t> shape;  // outermost first
  std::vector<uint8_t> bytes;
};

// The Hugging Face name of a GGUF tensor of a llama-lineage or LayerNorm decoder.
std::string hf_name(const std::string& gguf, const std::string& arch) {
  const bool neox = arch == "gptneox";
  static const std::map<std::string, std::string> top = {
      {"token_embd.weight", "model.embed_tokens.weight"}, {"output_norm.weight", "model.norm.weight"},
      {"output_norm.bias", "model.norm.bias"},           {"output.weight", "lm_head.weight"}};
  static const std::map<std::string, std::string> neox_top = {
      {"token_embd.weight", "gpt_neox.embed_in.weight"}, {"output_norm.weight", "gpt_neox.final_layer_norm.weight"},
      {"output_norm.bias", "gpt_neox.final_layer_norm.bias"}, {"output.weight", "embed_out.weight"}};
  if (auto it = (neox ? neox_top : top).find(gguf); it != (neox ? neox_top : top).end()) return it->second;
  static const std::map<std::string, std::string> block = {
      {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_norm.bias", "input_layernorm.bias"},     {"ffn_norm.bias", "post_attention_layernorm.bias"},
      {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},       {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
      {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},   {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  static const std::map<std::string, std::string> starcoder2 = {
      {"ffn_up.weight", "mlp.c_fc.weight"},     {"ffn_up.bias", "mlp.c_fc.bias"},
      {"ffn_down.weight", "mlp.c_proj.weight"}, {"ffn_down.bias", "mlp.c_proj.bias"}};
  static const std::map<std::string, std::string> gptneox = {
      {"attn_norm.weight", "input_layernorm.weight"},         {"attn_norm.bias", "input_layernorm.bias"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"}, {"ffn_norm.bias", "post_attention_layernorm.bias"},
      {"attn_qkv.weight", "attention.query_key_value.weight"}, {"attn_qkv.bias", "attention.query_key_value.bias"},
      {"attn_output.weight", "attention.dense.weight"},       {"attn_output.bias", "attention.dense.bias"},
      {"ffn_up.weight", "mlp.dense_h_to_4h.weight"},          {"ffn_up.bias", "mlp.dense_h_to_4h.bias"},
      {"ffn_down.weight", "mlp.dense_4h_to_h.weight"},        {"ffn_down.bias", "mlp.dense_4h_to_h.bias"}};
  static const std::map<std::string, std::string> gemma_norms = {
      {"attn_norm.weight", "input_layernorm.weight"}, {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_norm.weight", "pre_feedforward_layernorm.weight"}, {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"}};
  const size_t dot = gguf.find('.', 4);
  if (gguf.rfind("blk.", 0) != 0 || dot == std::string::npos) throw Error("hf_writer: no Hugging Face name for " + gguf);
  const std::string layer = gguf.substr(4, dot - 4), rest = gguf.substr(dot + 1);
  const std::string prefix = (neox ? "gpt_neox.layers." : "model.layers.") + layer + ".";
  const std::map<std::string, std::string>* own = arch == "gemma2"       ? &gemma_norms
                                                  : arch == "starcoder2" ? &starcoder2
                                                  : neox                 ? &gptneox
                                                                         : nullptr;
  if (own && own->count(rest)) return prefix + own->at(rest);
  if (arch == "phi3" && rest == "ffn_up.weight") return prefix + "mlp.gate_up_proj.weight";
  auto it = block.find(rest);
  if (neox || it == block.end()) throw Error("hf_writer: no Hugging Face name for " + gguf);
  return prefix + it->second;
}

// llama.cpp's interleaved pairs back to Hugging Face's halves: row (h, 2i + s) -> (h, s half + i).
std::vector<uint8_t> unpermute(const std::vector<uint8_t>& rows_in, int64_t rows, int64_t heads) {
  std::vector<uint8_t> out(rows_in.size());
  const int64_t head = rows / heads, half = head / 2;
  const size_t row_bytes = rows_in.size() / static_cast<size_t>(rows);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t s = 0; s < 2; ++s)
        std::memcpy(out.data() + (h * head + s * half + i) * row_bytes, rows_in.data() + (h * head + 2 * i + s) * row_bytes,
                    row_bytes);
  return out;
}

// llama.cpp's q | k | v blocks back to GPT-NeoX's rows per head: row ({q,k,v}, h, d) -> (h, {q,k,v}, d).
std::vector<uint8_t> ungroup_qkv(const std::vector<uint8_t>& rows_in, int64_t rows, int64_t heads) {
  std::vector<uint8_t> out(rows_in.size());
  const int64_t head = rows / (3 * heads);
  const size_t row_bytes = rows_in.size() / static_cast<size_t>(rows);
  for (int64_t part = 0; part < 3; ++part)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = 0; d < head; ++d)
        std::memcpy(out.data() + ((h * 3 + part) * head + d) * row_bytes,
                    rows_in.data() + ((part * heads + h) * head + d) * row_bytes, row_bytes);
  return out;
}

void write_safetensors(const fs::path& path, const std::vector<const HfTensor*>& tensors) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const HfTensor* t : tensors) {
    header[t->name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const HfTensor* t : tensors) f.write(reinterpret_cast<const char*>(t->bytes.data()), static_cast<std::streamsize>(t->bytes.size()));
  if (!f) throw Error("hf_writer: cannot write " + path.string());
}

void write_json(const fs::path& path, const json& j) {
  std::ofstream f(path);
  f << j.dump(2);
  if (!f) throw Error("hf_writer: cannot write " + path.string());
}

// config.json of `model`, as transformers' config class of its family writes it.
json config_of(const ModelFile& model, const std::string& arch) {
  auto key = [&](const std::string& k) { return arch + "." + k; };
  const bool mistral = arch == "llama" && model.find_u64(key("attention.sliding_window"));
  const std::map<std::string, std::pair<const char*, const char*>> classes = {
      {"llama", {"llama", "LlamaForCausalLM"}},   {"qwen2", {"qwen2", "Qwen2ForCausalLM"}},
      {"qwen3", {"qwen3", "Qwen3ForCausalLM"}},   {"phi3", {"phi3", "Phi3ForCausalLM"}},
      {"gemma2", {"gemma2", "Gemma2ForCausalLM"}}, {"starcoder2", {"starcoder2", "Starcoder2ForCausalLM"}},
      {"stablelm", {"stablelm", "StableLmForCausalLM"}}, {"gptneox", {"gpt_neox", "GPTNeoXForCausalLM"}}};
  auto cls = classes.find(arch);
  if (cls == classes.end()) throw Error("hf_writer: no Hugging Face class for arch " + arch);
  const int64_t n_embd = model.get_i64(key("embedding_length")), n_head = model.get_i64(key("attention.head_count"));
  const int64_t n_head_kv = model.find_i64(key("attention.head_count_kv")).value_or(n_head);
  json c = {{"architectures", {mistral ? "MistralForCausalLM" : cls->second.second}},
            {"model_type", mistral ? "mistral" : cls->second.first},
            {"hidden_size", n_embd},
            {"intermediate_size", model.get_i64(key("feed_forward_length"))},
            {"num_hidden_layers", model.get_i64(key("block_count"))},
            {"num_attention_heads", n_head},
            {"max_position_embeddings", model.find_i64(key("context_length")).value_or(2048)},
            {"vocab_size", model.weight("token_embd.weight")->ne[1]},
            {"tie_word_embeddings", model.weight("output.weight") == nullptr},
            {"torch_dtype", "float32"}};
  const double theta = model.find_f64(key("rope.freq_base")).value_or(10000.0);
  // The rotated share of a head (StableLM, GPT-NeoX).
  const double rotary = static_cast<double>(model.find_i64(key("rope.dimension_count")).value_or(n_embd / n_head)) /
                        static_cast<double>(n_embd / n_head);
  if (arch == "starcoder2") {
    c.update({{"num_key_value_heads", n_head_kv}, {"norm_epsilon", model.get_f64(key("attention.layer_norm_epsilon"))},
              {"rope_theta", theta}, {"hidden_act", "gelu_pytorch_tanh"}, {"use_bias", true},
              {"sliding_window", nullptr}});
    if (auto w = model.find_i64(key("attention.sliding_window"))) c["sliding_window"] = *w;
  } else if (arch == "stablelm") {
    c.update({{"num_key_value_heads", n_head_kv}, {"layer_norm_eps", model.get_f64(key("attention.layer_norm_epsilon"))},
              {"rope_theta", theta}, {"partial_rotary_factor", rotary}, {"hidden_act", "silu"},
              {"use_qkv_bias", model.weight("blk.0.attn_q.bias") != nullptr}, {"qk_layernorm", false},
              {"use_parallel_residual", false}});
  } else if (arch == "gptneox") {
    c.update({{"layer_norm_eps", model.get_f64(key("attention.layer_norm_epsilon"))}, {"rotary_emb_base", theta},
              {"rotary_pct", rotary}, {"hidden_act", "gelu"}, {"attention_bias", true},
              {"use_parallel_residual", model.find_bool(key("use_parallel_residual")).value_or(false)}});
  } else {
    c.update({{"num_key_value_heads", n_head_kv}, {"rms_norm_eps", model.get_f64(key("attention.layer_norm_rms_epsilon"))},
              {"rope_theta", theta}, {"hidden_act", "silu"}});
    if (auto hd = model.find_i64(key("attention.key_length"))) c["head_dim"] = *hd;
    if (auto f = model.find_f64(key("rope.scaling.factor"))) c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", *f}};
    if (auto w = model.find_i64(key("attention.sliding_window"))) c["sliding_window"] = *w;
  }
  if (arch == "phi3") c["original_max_position_embeddings"] = c["max_position_embeddings"];
  if (arch == "gemma2") {
    c.erase("hidden_act");
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["head_dim"] = model.find_i64(key("attention.key_length")).value_or(n_embd / n_head);
    c["query_pre_attn_scalar"] = c["head_dim"];
    c["attn_logit_softcapping"] = model.get_f64(key("attn_logit_softcapping"));
    c["final_logit_softcapping"] = model.get_f64(key("final_logit_softcapping"));
  }
  if (arch == "qwen2" || arch == "qwen3") c["use_sliding_window"] = false;
  if (auto b = model.find_u64("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *b;
  if (auto e = model.find_u64("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *e;
  return c;
}

}  // namespace

void write_hf_folder(const ModelFile& model, const fs::path& dir, int shards) {
  const std::string arch(model.get_string("general.architecture"));
  const int64_t n_head = model.get_i64(arch + ".attention.head_count");
  const int64_t n_head_kv = model.find_i64(arch + ".attention.head_count_kv").value_or(n_head);
  const MetaValue* tokens = model.meta("tokenizer.ggml.tokens");
  const json c = config_of(model, arch);
  fs::create_directories(dir);
  write_json(dir / "config.json", c);
  if (tokens) {
    write_json(dir / "tokenizer.json", tokenizer_json_of(model));
    write_json(dir / "tokenizer_config.json", tokenizer_config_of(model));
  }

  std::vector<HfTensor> out;
  for (const TensorInfo& t : model.tensors()) {
    if (t.view.dtype != DType::F32) throw Error("hf_writer: " + t.name + " is not F32");
    HfTensor h{hf_name(t.name, arch), {}, {}};
    for (int d = t.view.ndim - 1; d >= 0; --d) h.shape.push_back(t.view.ne[d]);
    const auto* p = static_cast<const uint8_t*>(t.view.host);
    h.bytes.assign(p, p + t.bytes);
    const bool q = t.name.find("attn_q.") != std::string::npos, k = t.name.find("attn_k.") != std::string::npos;
    if (arch == "llama" && (q || k)) h.bytes = unpermute(h.bytes, h.shape[0], q ? n_head : n_head_kv);
    if (arch == "gptneox" && t.name.find("attn_qkv.") != std::string::npos) h.bytes = ungroup_qkv(h.bytes, h.shape[0], n_head);
    // Gemma stores a norm's w and scales by 1 + w; the GGUF holds 1 + w (exact in float both ways
    // for w near 0).
    if (arch == "gemma2" && t.name.find("norm.weight") != std::string::npos)
      for (size_t i = 0; i < h.bytes.size(); i += 4) {
        float v;
        std::memcpy(&v, h.bytes.data() + i, 4);
        v -= 1.0f;
        std::memcpy(h.bytes.data() + i, &v, 4);
      }
    out.push_back(std::move(h));
  }
  if (shards == 1) {
    std::vector<const HfTensor*> all;
    for (const HfTensor& t : out) all.push_back(&t);
    write_safetensors(dir / "model.safetensors", all);
    return;
  }
  json map = json::object();
  for (int s = 0; s < shards; ++s) {
    const std::string name = "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    std::vector<const HfTensor*> part;
    for (size_t i = static_cast<size_t>(s); i < out.size(); i += static_cast<size_t>(shards)) {
      part.push_back(&out[i]);
      map[out[i].name] = name;
    }
    write_safetensors(dir / name, part);
  }
  write_json(dir / "model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", map}});
}

}  // namespace semline::testing
