// GPT-2 byte-level BPE as llama.cpp runs it for tokenizer.ggml.model = "gpt2".
//
// Encode: the text is cut into words by the pre-tokenizer tokenizer.ggml.pre names (llama.cpp's
// "default" when the key is absent; pre_tokenizer.h), each word's
// bytes are written in the byte-level alphabet, and adjacent symbols are merged by the merge
// list tokenizer.ggml.merges ("left right", earlier entries first; the leftmost pair on ties).
// Any byte string encodes, malformed UTF-8 included. User-defined tokens written in the text are
// cut out first (VocabTokenizer::split_special); control tokens written in the text (e.g.
// "<|endoftext|>") too with parse_special, else they are text.
//
// Decode maps the alphabet back to bytes and is the exact inverse of encode: llama.cpp's
// clean-up of spaces before punctuation is not applied. Control and unused tokens print nothing,
// the unknown token U+FFFD, user-defined tokens their piece.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <semline/model.h>
#include <semline/stage.h>

#include "pre_tokenizer.h"
#include "vocab_tokenizer.h"

namespace semline::tokenizers {

// Why tokenizer.ggml.pre cannot be served, or "" when it can.
std::string bpe_pre_problem(const ModelView& model);

class BpeTokenizer final : public VocabTokenizer {
 public:
  // Throws semline::Error naming the key when the vocabulary metadata is missing or malformed, or
  // when tokenizer.ggml.pre names a pre-tokenizer PreTokenizer does not know.
  BpeTokenizer(const ModelView& model, const LogFn& log);

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override;

 private:
  struct Merge {
    int32_t rank;    // position in tokenizer.ggml.merges: lower merges first
    int32_t result;  // the merged piece's id
  };
  struct Symbol {
    int32_t prev, next;
    int32_t id;  // -1 once merged into its left neighbour
  };
  struct Pair {
    int32_t rank, left, right;
    int32_t left_id, right_id;  // the symbols' ids when queued; a change later means stale
    int32_t result;
  };

  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void read_merges(const MetaReader& meta, const LogFn& log);
  int32_t byte_token(uint8_t b) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<Symbol>& sym,
                   std::vector<Pair>& heap) const;

  const PreTokenizer* pre_ = nullptr;
  std::unordered_map<uint64_t, Merge> merges_;  // key(left id, right id) -> merge
  std::array<int32_t, 256> byte_token_{};       // the token of each byte's character, -1 when none
};

}  // namespace semline::tokenizers
