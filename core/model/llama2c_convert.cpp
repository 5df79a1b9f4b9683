// llama2.c checkpoint + tokenizer.bin -> llama GGUF, laid out as llama.cpp's converter does:
// same metadata keys in the same order, same tensor names and order, all F32.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "core/model/llama2c.h"
#include "semline/error.h"

namespace semline::llama2c {

namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // '▁', SentencePiece's word boundary
constexpr uint32_t kNoToken = 0xffffffffu;

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && is_hex(t[3]) && is_hex(t[4]) && t[5] == '>';
}

std::span<const uint8_t> as_bytes(std::span<const float> s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size_bytes()};
}

// Layer l's slice of an array stacked over layers.
std::span<const uint8_t> layer(std::span<const float> s, int64_t l, int64_t n_layers) {
  size_t per = s.size() / static_cast<size_t>(n_layers);
  return as_bytes(s.subspan(static_cast<size_t>(l) * per, per));
}

}  // namespace

std::string gguf_token_text(const Vocab& vocab, size_t id) {
  if (id == 0) return "<unk>";
  if (id == 1) return "<s>";
  if (id == 2) return "</s>";
  std::string out;
  for (char c : vocab.tokens[id]) {
    if (c == ' ') out += kSpace;
    else out += c;
  }
  return out;
}

TokenType gguf_token_type(const Vocab& vocab, size_t id) {
  if (id == 0) return TokenType::Unknown;
  if (id == 1 || id == 2 || vocab.tokens[id].empty()) return TokenType::Control;
  if (is_byte_token(vocab.tokens[id])) return TokenType::Byte;
  return TokenType::Normal;
}

void convert_llama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer,
                     const std::filesystem::path& out, const gguf::Progress& progress,
                     const ConvertOptions& options) {
  auto ck = Checkpoint::open(checkpoint);
  const Config& c = ck->config();
  const Weights& w = ck->weights();
  if (c.vocab_size < 3)
    throw Error(fmt::format("{}: vocab_size {} is too small: ids 0, 1 and 2 are <unk>, <s> and </s>", ck->path(),
                            c.vocab_size));
  Vocab vocab = read_tokenizer(tokenizer, c.vocab_size);
  if (options.context_length < 0)
    throw Error(fmt::format("llama2.c convert: context length {} is negative", options.context_length));
  const int64_t ctx = options.context_length ? options.context_length : c.seq_len;
  if (ctx > UINT32_MAX) throw Error(fmt::format("llama2.c convert: context length {} exceeds 2^32 - 1", ctx));

  gguf::GgufWriter g;
  std::vector<std::string> texts;
  std::vector<int32_t> types;
  texts.reserve(vocab.tokens.size());
  types.reserve(vocab.tokens.size());
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    texts.push_back(gguf_token_text(vocab, id));
    types.push_back(static_cast<int32_t>(gguf_token_type(vocab, id)));
  }
  g.add_string_array("tokenizer.ggml.tokens", texts);
  g.add_array<float>("tokenizer.ggml.scores", vocab.scores);
  g.add_array<int32_t>("tokenizer.ggml.token_type", types);
  g.add_string("tokenizer.ggml.model", "llama");
  g.add_string("general.architecture", "llama");
  g.add_string("general.name", options.name);
  g.add_u32("tokenizer.ggml.unknown_token_id", 0);
  g.add_u32("tokenizer.ggml.bos_token_id", 1);
  g.add_u32("tokenizer.ggml.eos_token_id", 2);
  g.add_u32("tokenizer.ggml.seperator_token_id", kNoToken);  // llama.cpp's spelling of the key
  g.add_u32("tokenizer.ggml.padding_token_id", kNoToken);
  g.add_u32("llama.context_length", static_cast<uint32_t>(ctx));
  g.add_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  g.add_u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  g.add_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  g.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  g.add_u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  g.add_u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_size()));
  g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);  // llama2.c's rmsnorm constant

  const int64_t D = c.dim, H = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size, L = c.n_layers;
  g.add_tensor("token_embd.weight", DType::F32, {D, V}, as_bytes(w.token_embedding));
  g.add_tensor("output_norm.weight", DType::F32, {D}, as_bytes(w.rms_final));
  g.add_tensor("output.weight", DType::F32, {D, V}, as_bytes(w.wcls));
  // llama2.c's rotary embedding pairs adjacent dimensions, as GGUF's llama layout does, so the
  // projections are copied as they are (no head permutation).
  for (int64_t l = 0; l < L; ++l) {
    auto name = [l](const char* what) { return fmt::format("blk.{}.{}.weight", l, what); };
    g.add_tensor(name("attn_q"), DType::F32, {D, D}, layer(w.wq, l, L));
    g.add_tensor(name("attn_k"), DType::F32, {D, KV}, layer(w.wk, l, L));
    g.add_tensor(name("attn_v"), DType::F32, {D, KV}, layer(w.wv, l, L));
    g.add_tensor(name("attn_output"), DType::F32, {D, D}, layer(w.wo, l, L));
    g.add_tensor(name("attn_norm"), DType::F32, {D}, layer(w.rms_att, l, L));
    g.add_tensor(name("ffn_gate"), DType::F32, {D, H}, layer(w.w1, l, L));
    g.add_tensor(name("ffn_down"), DType::F32, {H, D}, layer(w.w2, l, L));
    g.add_tensor(name("ffn_up"), DType::F32, {D, H}, layer(w.w3, l, L));
    g.add_tensor(name("ffn_norm"), DType::F32, {D}, layer(w.rms_ffn, l, L));
  }
  spdlog::debug("converting {} (dim {}, {} layers, vocab {}) to {}", ck->path(), D, L, V, out.string());
  g.write(out, progress);
}

}  // namespace semline::llama2c
