// SentencePiece BPE as llama.cpp runs it for tokenizer.ggml.model = "llama".
//
// Encode: a space is put before the text (the dummy prefix; tokenizer.ggml.add_space_prefix,
// default true), every ' ' becomes U+2581 '▁', the text is cut into characters, and adjacent
// symbols are merged while their concatenation is a vocabulary piece, the pair whose piece has
// the highest score first (the leftmost on ties). A final symbol that is no piece is spelled with
// byte tokens <0xXX> (the byte as a one-character piece, else the unknown token, when the
// vocabulary has no such token).
//
// User-defined tokens written in the text are cut out first and the parts between them encoded
// apart, each with its dummy prefix (VocabTokenizer::split_special). Control tokens written
// in the text (e.g. "<s>") are cut out the same way with parse_special, else they are text. A byte
// that starts no well-formed UTF-8 character is a symbol of its own, so it ends as its byte
// token while its neighbours still merge (llama.cpp groups it with the bytes that follow).
//
// Decode: '▁' reads ' ', byte tokens give their byte, control and unused tokens nothing, the
// unknown token U+FFFD; decode() drops the dummy prefix's space from the sequence start.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <semline/model.h>
#include <semline/stage.h>

#include "vocab_tokenizer.h"

namespace semline::tokenizers {

class SpmTokenizer final : public VocabTokenizer {
 public:
  // Throws semline::Error naming the key when the vocabulary metadata is missing or malformed.
  SpmTokenizer(const ModelView& model, const LogFn& log);

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override;
  std::string decode(std::span<const int32_t> ids) const override;

 private:
  void merge(const std::string& escaped, std::vector<int32_t>& out) const;
  void spell_bytes(std::string_view symbol, std::vector<int32_t>& out) const;

  bool add_space_prefix_ = true;
  std::array<int32_t, 256> byte_token_{};  // the token spelling each byte, -1 when none
};

}  // namespace semline::tokenizers
