#include "char_tokenizer.h"

#include <cstdio>

#include "utf8.h"

namespace semline::tokenizers {

namespace {

std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", b);
  return buf;
}

// 'x' (U+0078); control characters are shown by their code point only.
std::string describe(std::string_view ch, uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", cp);
  if (cp < 0x20 || cp == 0x7F) return buf;
  std::string s = "'";
  s.append(ch).append("' (").append(buf).append(")");
  return s;
}

}  // namespace

CharTokenizer::CharTokenizer(const ModelView& model, const LogFn&)
    : VocabTokenizer(read_vocab(MetaReader(model), false), model.path()) {
  MetaReader meta(model);
  add_bos_ = meta.find_bool("tokenizer.ggml.add_bos_token").value_or(false);
  bytes_.resize(vocab_.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const std::string& p = vocab_.pieces[id];
    const Utf8Unit u = p.empty() ? Utf8Unit{kInvalidCodePoint, 0} : utf8_next(p, 0);
    if (u.cp == kInvalidCodePoint || u.len != p.size())
      meta.fail("tokenizer.ggml.tokens", "entry " + std::to_string(id) + " (" + std::to_string(p.size()) +
                                             " bytes) is not one UTF-8 character, as a char vocabulary needs");
    bytes_[id] = p;
  }
}

std::vector<int32_t> CharTokenizer::encode(std::string_view text, bool add_bos, bool) const {
  std::vector<int32_t> out;
  out.reserve(text.size() + 1);
  if (starts_with_bos(add_bos)) out.push_back(vocab_.bos);
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit u = utf8_next(text, pos);
    if (u.cp == kInvalidCodePoint)
      fail("byte " + hex_byte(static_cast<unsigned char>(text[pos])) + " at byte offset " + std::to_string(pos) +
           " of the text starts no UTF-8 character; the char vocabulary cannot spell it");
    const std::string_view ch = text.substr(pos, u.len);
    const int32_t id = vocab_.find(ch);
    if (id < 0)
      fail("the character " + describe(ch, u.cp) + " at byte offset " + std::to_string(pos) +
           " of the text is not in the vocabulary of " + std::to_string(vocab_.size()) + " characters");
    out.push_back(id);
    pos += u.len;
  }
  return out;
}

}  // namespace semline::tokenizers
