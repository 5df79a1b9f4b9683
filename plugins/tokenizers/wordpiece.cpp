#include "wordpiece.h"

#include <algorithm>

#include "unicode_class.h"
#include "utf8.h"
#include "vocab_tokenizer.h"

namespace semline::tokenizers {

namespace {

constexpr std::string_view kWordStart = "\xE2\x96\x81";  // U+2581

// The CJK ideograph blocks BERT's normaliser sets apart (as its reference code lists them).
bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

class WordPieceTokenizer final : public VocabTokenizer {
 public:
  WordPieceTokenizer(const ModelView& model, const LogFn& log);
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override;

 private:
  std::vector<std::string> words(std::string_view text) const;
  void spell(const std::string& word, std::vector<int32_t>& out) const;

  bool lowercase_ = true, strip_accents_ = true;
};

WordPieceTokenizer::WordPieceTokenizer(const ModelView& model, const LogFn&)
    : VocabTokenizer(read_vocab(MetaReader(model), false), model.path()) {
  MetaReader meta(model);
  add_bos_ = meta.find_bool("tokenizer.ggml.add_bos_token").value_or(false);
  lowercase_ = meta.find_bool("tokenizer.ggml.normalizer.lowercase").value_or(true);
  strip_accents_ = meta.find_bool("tokenizer.ggml.normalizer.strip_accents").value_or(lowercase_);
  if (vocab_.unk < 0)
    meta.fail("tokenizer.ggml.unknown_token_id", "is missing; WordPiece spells a word it cannot spell with it");
  bytes_.resize(vocab_.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const std::string& p = vocab_.pieces[id];
    switch (vocab_.types[id]) {
      case TokenType::Normal:
      case TokenType::UserDefined:
        bytes_[id] = p.starts_with(kWordStart) ? " " + p.substr(kWordStart.size()) : p;
        break;
      case TokenType::Unknown: bytes_[id] = kReplacementChar; break;
      default: break;  // control and unused tokens print nothing
    }
  }
}

std::vector<std::string> WordPieceTokenizer::words(std::string_view text) const {
  std::vector<std::string> out(1);
  auto end_word = [&] {
    if (!out.back().empty()) out.emplace_back();
  };
  const std::string clean = utf8_lenient(text);  // malformed bytes read as U+FFFD, then dropped
  for (size_t pos = 0; pos < clean.size();) {
    const Utf8Unit u = utf8_next(clean, pos);
    pos += u.len;
    if (u.cp == kInvalidCodePoint) continue;  // a surrogate utf8_lenient let through: a control
    const uint32_t cp = strip_accents_ ? nfd_base(u.cp) : u.cp;
    if (char_class(cp) == CharClass::Space) {
      end_word();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || is_control(cp) || (strip_accents_ && is_mark(cp))) continue;
    const bool alone = is_punctuation(cp) || (cp < 0x7F && is_symbol(cp)) || is_cjk(cp);
    if (alone) end_word();
    utf8_append(out.back(), lowercase_ ? to_lower(cp) : cp);
    if (alone) out.emplace_back();
  }
  if (out.back().empty()) out.pop_back();
  return out;
}

void WordPieceTokenizer::spell(const std::string& word, std::vector<int32_t>& out) const {
  const std::string w = std::string(kWordStart) + word;
  const size_t first = out.size(), n = w.size();
  for (size_t i = 0; i < n;) {
    size_t j = std::min(n, i + vocab_.max_piece_len);
    int32_t id = -1;
    for (; j > i; --j)
      if ((id = vocab_.find(std::string_view(w).substr(i, j - i))) >= 0) break;
    if (id < 0) {  // the word cannot be spelled: all of it is unknown
      out.resize(first);
      out.push_back(vocab_.unk);
      return;
    }
    out.push_back(id);
    i = j;
  }
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> out;
  if (starts_with_bos(add_bos)) out.push_back(vocab_.bos);
  for (const Fragment& f : split_special(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    for (const std::string& word : words(f.text)) spell(word, out);
  }
  return out;
}

}  // namespace

std::unique_ptr<Tokenizer> make_wordpiece_tokenizer(const ModelView& model, const LogFn& log) {
  return std::make_unique<WordPieceTokenizer>(model, log);
}

}  // namespace semline::tokenizers
