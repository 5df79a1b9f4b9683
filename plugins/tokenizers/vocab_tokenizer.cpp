#include "vocab_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <iterator>

#include <semline/error.h>

namespace semline::tokenizers {

int32_t VocabTokenizer::checked(int32_t id) const {
  if (id < 0 || id >= vocab_.size())
    fail("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_.size()) + ")");
  return id;
}

VocabTokenizer::VocabTokenizer(Vocab vocab, std::string origin) : vocab_(std::move(vocab)), origin_(std::move(origin)) {
  auto control_looking = [](std::string_view piece) {
    return std::find(std::begin(kControlLookingPieces), std::end(kControlLookingPieces), piece) !=
           std::end(kControlLookingPieces);
  };
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const TokenType t = vocab_.types[id];
    if (vocab_.pieces[id].empty() || (t != TokenType::UserDefined && t != TokenType::Control && t != TokenType::Unknown))
      continue;
    // A control-looking piece is a control token, whatever type the file gave it (as llama.cpp).
    special_.emplace_back(id, t == TokenType::UserDefined && !control_looking(vocab_.pieces[id]));
  }
  std::stable_sort(special_.begin(), special_.end(), [&](const auto& a, const auto& b) {
    return vocab_.pieces[a.first].size() > vocab_.pieces[b.first].size();
  });
}

std::vector<VocabTokenizer::Fragment> VocabTokenizer::split_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments, next;
  if (!text.empty()) fragments.push_back({text});
  for (const auto& [id, always] : special_) {
    if (!always && !parse_special) continue;
    const std::string& piece = vocab_.pieces[id];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const uint8_t strip = vocab_.strip[id];
      const auto space = [&](size_t i) { return std::isspace(static_cast<unsigned char>(f.text[i])) != 0; };
      size_t from = 0;
      for (size_t at; (at = f.text.find(piece, from)) != std::string_view::npos;) {
        size_t left_end = at;
        if (strip & Vocab::kStripLeft)
          while (left_end > from && space(left_end - 1)) --left_end;
        if (left_end > from) next.push_back({f.text.substr(from, left_end - from)});
        next.push_back({f.text.substr(at, piece.size()), id});
        from = at + piece.size();
        if (strip & Vocab::kStripRight)
          while (from < f.text.size() && space(from)) ++from;
      }
      if (from < f.text.size()) next.push_back({f.text.substr(from)});
    }
    fragments.swap(next);
  }
  return fragments;
}

void VocabTokenizer::fail(const std::string& what) const { throw Error(origin_ + ": " + what); }

std::string VocabTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (int32_t id : ids) text += bytes_[checked(id)];
  return text;
}

}  // namespace semline::tokenizers
