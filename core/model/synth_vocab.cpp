#include "core/model/synth_vocab.h"

#include <spdlog/fmt/fmt.h>

#include "core/model/gguf.h"
#include "core/model/llama2c.h"
#include "semline/error.h"

namespace semline {

int64_t add_generated_vocab(gguf::GgufWriter& w, int64_t n) {
  if (n < kMinGeneratedVocab || n > UINT32_MAX)
    throw Error(fmt::format("synth: vocab {} is out of range for a generated tokenizer (needs {} to {}: 3 special "
                            "and 256 byte tokens come first)",
                            n, kMinGeneratedVocab, UINT32_MAX));
  using llama2c::TokenType;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {int32_t(TokenType::Unknown), int32_t(TokenType::Control), int32_t(TokenType::Control)};
  tokens.reserve(static_cast<size_t>(n));
  types.reserve(static_cast<size_t>(n));
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(int32_t(TokenType::Byte));
  }
  // Letter strings by length, then in order; each once with the word-boundary mark, once without.
  static constexpr std::string_view kLetters = "etaoinshrdlcumwfgypbvkjxqz";
  std::vector<size_t> digits(1, 0);
  while (static_cast<int64_t>(tokens.size()) < n) {
    std::string piece;
    for (size_t d : digits) piece += kLetters[d];
    for (std::string t : {"\xe2\x96\x81" + piece, piece}) {
      if (static_cast<int64_t>(tokens.size()) == n) break;
      tokens.push_back(std::move(t));
      types.push_back(int32_t(TokenType::Normal));
    }
    size_t k = digits.size();
    while (k > 0 && ++digits[k - 1] == kLetters.size()) digits[--k] = 0;
    if (k == 0) digits.insert(digits.begin(), 0);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = kMinGeneratedVocab; i < tokens.size(); ++i)
    scores[i] = -static_cast<float>(i - kMinGeneratedVocab);  // earlier (shorter) pieces merge first
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_array<float>("tokenizer.ggml.scores", scores);
  w.add_array<int32_t>("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  return n;
}

int64_t copy_vocab(gguf::GgufWriter& w, const std::filesystem::path& vocab_gguf) {
  auto f = gguf::GgufFile::open(vocab_gguf);
  const MetaValue* tokens = f->meta("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != MetaType::ARRAY || tokens->elem != MetaType::STRING || tokens->count == 0)
    throw Error(fmt::format("{}: no tokenizer.ggml.tokens string array to take the vocabulary from", f->path()));
  if (tokens->count > UINT32_MAX)
    throw Error(fmt::format("{}: vocabulary of {} tokens is larger than 2^32 - 1", f->path(), tokens->count));
  for (const auto& [key, value] : f->metadata())
    if (key.rfind("tokenizer.", 0) == 0) w.add_meta(key, value);
  return static_cast<int64_t>(tokens->count);
}

}  // namespace semline
