// The pre-tokenizers of byte-level BPE, as llama.cpp runs them for each tokenizer.ggml.pre value:
// an ordered list of rules, each one of llama.cpp's regular expressions written out by hand over
// code points and their classes. A rule cuts every piece the rules before it left at its matches,
// found left to right as a regex search finds them: each match is a piece, and so is the text
// between two matches. A rule sees one piece at a time: a lookahead or `$` stops at its end.
//
// Classes as llama.cpp reads them: \s is Unicode White_Space, \p{L} \p{N} \p{P} are general
// categories, and a byte that starts no well-formed UTF-8 character reads as U+FFFD (a symbol:
// none of those classes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "unicode_class.h"

namespace semline::tokenizers {

struct Span {
  size_t off, len;  // bytes
};

class PreTokenizer {
 public:
  struct Char {
    uint32_t cp;   // kInvalidCodePoint for a malformed byte
    uint32_t off;  // byte offset in the text
    CharClass cls;
    bool punct;  // \p{P}
  };
  // The length of the rule's match that starts at chars[at] and ends by chars[end], 0 for none.
  using Rule = size_t (*)(const std::vector<Char>& chars, size_t at, size_t end);

  explicit PreTokenizer(std::vector<Rule> rules, bool ignore_merges = false)
      : rules_(std::move(rules)), ignore_merges_(ignore_merges) {}

  // The pre-tokenizer of a tokenizer.ggml.pre value ("default" when the key is absent), or
  // nullptr when it is not one of names().
  static const PreTokenizer* named(std::string_view pre);
  // The values served, comma-separated, for messages.
  static std::string names();

  // The words of `text`, in order, covering every byte of it.
  std::vector<Span> split(std::string_view text) const;
  // Whether a word the vocabulary holds whole is that token, merges or not (llama.cpp sets this
  // with the Llama 3 pre-tokenizer).
  bool ignore_merges() const { return ignore_merges_; }

 private:
  std::vector<Rule> rules_;
  bool ignore_merges_ = false;
};

}  // namespace semline::tokenizers
