// The checks both tokenizer harnesses run on one input, against one vocabulary.
//
// As text: encode (with BOS), every id inside the vocabulary, decode and the joined token_bytes
// (what streaming prints) agree with the input where the tokenizer promises a round trip; encode
// with special tokens parsed gives ids inside the vocabulary too (control tokens print nothing, so
// that text does not round-trip).
// As token ids (the input read as u16 values): decode and token_bytes accept every id inside the
// vocabulary and refuse any outside it with a semline::Error.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "semline/error.h"
#include "semline/stage.h"

namespace semline::fuzz {

inline std::string joined_bytes(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += tok.token_bytes(id);
  return s;
}

// `dummy_prefix`: SentencePiece streams a space before the text that decode() drops. `as_read`:
// the text as the tokenizer reads it (byte-level BPE: utf8_lenient), what decode must give back.
inline void check_text(const Tokenizer& tok, std::string_view text, bool dummy_prefix, bool round_trips,
                       std::string_view as_read) {
  for (int32_t id : tok.encode(text, false, true))
    expect(id >= 0 && id < tok.n_vocab(), "encode with special tokens parsed gave an id outside the vocabulary");
  std::vector<int32_t> ids = tok.encode(text, true, false);
  for (int32_t id : ids) expect(id >= 0 && id < tok.n_vocab(), "encode gave an id outside the vocabulary");
  std::string decoded = tok.decode(ids);
  std::string streamed = joined_bytes(tok, ids);
  if (!round_trips) return;
  expect(decoded == as_read, "decode(encode(text)) differs from the text");
  std::string with_prefix = dummy_prefix && !as_read.empty() ? " " + std::string(as_read) : std::string(as_read);
  expect(streamed == with_prefix, "the joined token_bytes of encode(text) differ from the text");
}

// `dummy_prefix`: decode may drop one leading space of what the token bytes join to.
inline void check_ids(const Tokenizer& tok, const uint8_t* data, size_t size, bool dummy_prefix) {
  std::vector<int32_t> ids(size / 2);
  bool all_valid = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    uint16_t v;
    std::memcpy(&v, data + 2 * i, 2);
    ids[i] = v;
    all_valid = all_valid && v < tok.n_vocab();
  }
  std::string decoded;
  try {
    decoded = tok.decode(ids);
  } catch (const Error&) {
    expect(!all_valid, "decode refused valid token ids");
    return;
  }
  expect(all_valid, "decode accepted a token id outside the vocabulary");
  std::string streamed = joined_bytes(tok, ids);
  expect(decoded == streamed || (dummy_prefix && !streamed.empty() && streamed[0] == ' ' && decoded == streamed.substr(1)),
         "decode differs from the joined token_bytes beyond the dummy prefix");
  for (int32_t id : ids) (void)tok.piece(id);
}

}  // namespace semline::fuzz
