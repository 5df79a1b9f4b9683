// What the SentencePiece and byte-level BPE tokenizers share: the vocabulary, the bytes each
// token stands for, and id checks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <semline/stage.h>

#include "vocab.h"

namespace semline::tokenizers {

// What an unknown-token id prints: it stands for text the vocabulary could not spell.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

class VocabTokenizer : public Tokenizer {
 public:
  std::string token_bytes(int32_t id) const override { return bytes_[checked(id)]; }
  std::string decode(std::span<const int32_t> ids) const override;
  std::string piece(int32_t id) const override { return vocab_.pieces[checked(id)]; }
  int32_t n_vocab() const override { return vocab_.size(); }
  int32_t bos() const override { return vocab_.bos; }
  int32_t eos() const override { return vocab_.eos; }
  bool is_eog(int32_t id) const override { return std::binary_search(vocab_.eog.begin(), vocab_.eog.end(), id); }

 protected:
  VocabTokenizer(Vocab vocab, std::string origin);
  int32_t checked(int32_t id) const;  // throws when id is not a token id
  // Whether encode should start with BOS: the caller allows it, the vocabulary asks and has one.
  bool starts_with_bos(bool add_bos) const { return add_bos && add_bos_ && vocab_.bos >= 0; }
  [[noreturn]] void fail(const std::string& what) const;

  // A piece of the text to encode: text for the tokenizer (token < 0) or a user-defined token.
  struct Fragment {
    std::string_view text;
    int32_t token = -1;
  };
  // The text cut at the special tokens it contains, as llama.cpp cuts it before tokenizing: the
  // user-defined ones always, control and unknown ones too when parse_special (otherwise they are
  // text like any other); the longest token first, each of its occurrences left to right in the
  // text not taken yet.
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;

  Vocab vocab_;
  // Ids of the user-defined, control and unknown tokens, longest piece first (equal lengths by id),
  // each marked whether it is cut out of a text without parse_special.
  std::vector<std::pair<int32_t, bool>> special_;
  std::vector<std::string> bytes_;  // [n_vocab] what each token contributes to the text
  bool add_bos_ = false;            // tokenizer.ggml.add_bos_token
  std::string origin_;              // the model file, for messages
};

}  // namespace semline::tokenizers
