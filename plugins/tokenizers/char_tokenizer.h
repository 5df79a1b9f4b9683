// A character-level vocabulary (tokenizer.ggml.model = "char"): every token is one UTF-8
// character, as in models trained on the characters of a text (e.g. a Hugging Face folder whose
// vocab.json maps single characters to ids and has no merges.txt).
//
// Encode: one id per UTF-8 character of the text; a character the vocabulary lacks (or a byte
// that starts no well-formed character) is an error naming it and its byte offset, since the
// vocabulary has no way to spell it. Decode joins the characters. BOS is added only when the
// file asks (tokenizer.ggml.add_bos_token) and names one.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <semline/model.h>
#include <semline/stage.h>

#include "vocab_tokenizer.h"

namespace semline::tokenizers {

class CharTokenizer final : public VocabTokenizer {
 public:
  // Throws semline::Error naming the key when the vocabulary is missing or malformed, or a token
  // is not exactly one UTF-8 character.
  CharTokenizer(const ModelView& model, const LogFn& log);

  // parse_special changes nothing: every token is one character, so no token is spelled by several.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override;
};

}  // namespace semline::tokenizers
