#include "vocab.h"

#include <algorithm>
#include <limits>

namespace semline::tokenizers {

void Vocab::index() {
  ids_.clear();
  ids_.reserve(pieces.size());
  max_piece_len = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    ids_.insert_or_assign(std::string_view(pieces[i]), static_cast<int32_t>(i));
    max_piece_len = std::max(max_piece_len, pieces[i].size());
  }
}

Vocab read_vocab(const MetaReader& meta, bool need_scores) {
  constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
  const MetaValue& tokens = meta.strings(kTokens);
  if (tokens.count == 0) meta.fail(kTokens, "is empty");
  if (tokens.count > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
    meta.fail(kTokens, "has " + std::to_string(tokens.count) + " entries, more than token ids can number");

  Vocab v;
  const auto n = static_cast<int32_t>(tokens.count);
  v.pieces.assign(tokens.strings.begin(), tokens.strings.end());

  constexpr std::string_view kScores = "tokenizer.ggml.scores";
  if (const MetaValue* s = meta.find_numbers(kScores, tokens.count, false)) {
    v.scores.resize(n);
    for (int32_t i = 0; i < n; ++i) v.scores[i] = s->at<float>(i);
  } else if (need_scores) {
    meta.fail(kScores, "is missing: this tokenizer merges pieces by score");
  }

  constexpr std::string_view kTypes = "tokenizer.ggml.token_type";
  v.types.assign(n, TokenType::Normal);
  if (const MetaValue* t = meta.find_numbers(kTypes, tokens.count, true)) {
    for (int32_t i = 0; i < n; ++i) {
      int64_t type = t->at<int64_t>(i);
      v.types[i] = type >= 0 && type <= 6 ? static_cast<TokenType>(type) : TokenType::Undefined;
    }
  }

  v.bos = meta.find_token_id("tokenizer.ggml.bos_token_id", n).value_or(-1);
  v.eos = meta.find_token_id("tokenizer.ggml.eos_token_id", n).value_or(-1);
  v.unk = meta.find_token_id("tokenizer.ggml.unknown_token_id", n).value_or(-1);
  v.index();
  return v;
}

}  // namespace semline::tokenizers
