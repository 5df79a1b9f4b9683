#include "vocab_tokenizer.h"

#include <algorithm>
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
  for (int32_t id = 0; id < vocab_.size(); ++id)
    if (vocab_.types[id] == TokenType::UserDefined && !vocab_.pieces[id].empty() && !control_looking(vocab_.pieces[id]))
      user_defined_.push_back(id);
  std::stable_sort(user_defined_.begin(), user_defined_.end(),
                   [&](int32_t a, int32_t b) { return vocab_.pieces[a].size() > vocab_.pieces[b].size(); });
}

std::vector<VocabTokenizer::Fragment> VocabTokenizer::split_user_defined(std::string_view text) const {
  std::vector<Fragment> fragments, next;
  if (!text.empty()) fragments.push_back({text});
  for (int32_t id : user_defined_) {
    const std::string& piece = vocab_.pieces[id];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t from = 0;
      for (size_t at; (at = f.text.find(piece, from)) != std::string_view::npos; from = at + piece.size()) {
        if (at > from) next.push_back({f.text.substr(from, at - from)});
        next.push_back({f.text.substr(at, piece.size()), id});
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
