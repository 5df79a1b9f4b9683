// The vocabulary as GGUF stores it: pieces, scores, token types and the special ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "meta_reader.h"

namespace semline::tokenizers {

// tokenizer.ggml.token_type values, numbered as llama.cpp's converters write them.
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

// Pieces llama.cpp takes for end-of-generation control tokens whatever type the file gives them
// (a converter may have typed them user-defined): they are cut out of a text only with
// parse_special, as control tokens.
inline constexpr std::string_view kControlLookingPieces[] = {
    "<|eot_id|>", "<|im_end|>",    "<|end|>",           "<|return|>",       "<|call|>",    "<|flush|>",
    "<|calls|>",  "<end_of_turn>", "<|endoftext|>",     "</s>",             "<|eom_id|>",  "<EOT>",
    "_<EOT>",     "[EOT]",         "[EOS]",             "<|end_of_text|>",  "<end_of_utterance>",
    "<eos>",      "<turn|>",       "<|tool_response>",  "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
};

struct Vocab {
  std::vector<std::string> pieces;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores, empty when the file has none
  std::vector<TokenType> types;      // tokenizer.ggml.token_type, Normal when the file has none
  int32_t bos = -1, eos = -1, unk = -1;
  size_t max_piece_len = 0;
  // Per token, the white space a special token written in a text takes with it when it is cut out
  // (llama.cpp's LSTRIP / RSTRIP token attributes, which it sets by model name: strip_rules()).
  enum Strip : uint8_t { kStripNone = 0, kStripLeft = 1, kStripRight = 2 };
  std::vector<uint8_t> strip;
  // The tokens that end generation, ascending (eog_rules()).
  std::vector<int32_t> eog;

  Vocab() = default;
  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;
  // `ids_` views the strings in `pieces`; a copy would leave them pointing at the original.
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  int32_t size() const { return static_cast<int32_t>(pieces.size()); }
  // The id of a piece, -1 when absent. A piece listed twice resolves to its last id, as in
  // llama.cpp.
  int32_t find(std::string_view piece) const {
    auto it = ids_.find(piece);
    return it == ids_.end() ? -1 : it->second;
  }
  void index();  // builds the piece -> id lookup

 private:
  std::unordered_map<std::string_view, int32_t> ids_;
};

// Reads tokens, token types, scores (required when `need_scores`) and the special ids.
Vocab read_vocab(const MetaReader& meta, bool need_scores);

}  // namespace semline::tokenizers
