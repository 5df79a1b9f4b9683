#include "vocab.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <set>
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

namespace {

bool contains_any(const std::string& s, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return s.find(w) != std::string::npos; });
}

// The strip attributes llama.cpp gives special tokens by general.name (lowercased),
// tokenizer.ggml.pre and general.architecture: Phi-3's special tokens take the white space after
// them (but <unk>, <s> and <|endoftext|>); a mask token takes the white space before it
// (Jina v2, nomic-bert-moe, jina-bert-v3: <mask>; ModernBERT: [MASK]).
void strip_rules(const MetaReader& meta, Vocab& v) {
  const auto text = [&](std::string_view key) { return std::string(meta.find_string(key).value_or("")); };
  std::string name = text("general.name");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string pre = text("tokenizer.ggml.pre"), arch = text("general.architecture");
  auto set = [&](std::string_view piece, uint8_t flag, bool on) {
    const int32_t id = v.find(piece);
    if (id >= 0) v.strip[id] = on ? (v.strip[id] | flag) : (v.strip[id] & ~flag);
  };
  if (contains_any(pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
    set("<mask>", Vocab::kStripLeft, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    for (int32_t id = 0; id < v.size(); ++id)
      if (v.types[id] == TokenType::Control || v.types[id] == TokenType::UserDefined || v.types[id] == TokenType::Unknown)
        v.strip[id] |= Vocab::kStripRight;
    set("</s>", Vocab::kStripRight, true);
    for (const char* piece : {"<unk>", "<s>", "<|endoftext|>"}) set(piece, Vocab::kStripRight, false);
  } else if (contains_any(name, {"modern-bert"})) {
    set("[MASK]", Vocab::kStripLeft, true);
  }
}

// llama.cpp's end-of-generation set: EOS, EOT and EOM (tokenizer.ggml.{eos,eot,eom}_token_id), the
// fill-in-the-middle pad, repo and separator tokens (their keys, else the pieces llama.cpp looks
// for), and every control-looking piece (kControlLookingPieces); less <|end|> where the vocabulary
// also has <|return|> and <|call|> or <|calls|> and <|flush|> (it is a turn's end there, not the
// text's), and less </s> where it has <|tool_response>.
void eog_rules(const MetaReader& meta, Vocab& v) {
  std::set<int32_t> eog;
  const int32_t n = v.size();
  auto by_key = [&](std::string_view key) {
    if (const auto id = meta.find_token_id(key, n)) eog.insert(*id);
    return meta.find_token_id(key, n).has_value();
  };
  auto by_piece = [&](std::initializer_list<const char*> pieces) {
    for (const char* p : pieces)
      if (const int32_t id = v.find(p); id >= 0) eog.insert(id);
  };
  for (std::string_view key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    by_key(key);
  if (!by_key("tokenizer.ggml.fim_pad_token_id")) by_piece({"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  if (!by_key("tokenizer.ggml.fim_rep_token_id"))
    by_piece({"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  if (!by_key("tokenizer.ggml.fim_sep_token_id")) by_piece({"<|file_sep|>"});
  for (std::string_view piece : kControlLookingPieces)
    if (const int32_t id = v.find(piece); id >= 0) eog.insert(id);
  const auto has = [&](const char* piece) { const int32_t id = v.find(piece); return id >= 0 && eog.count(id); };
  if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>"))))
    eog.erase(v.find("<|end|>"));
  if (has("<|tool_response>") && has("</s>")) eog.erase(v.find("</s>"));
  v.eog.assign(eog.begin(), eog.end());
}

}  // namespace

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
  v.strip.assign(n, Vocab::kStripNone);
  strip_rules(meta, v);
  eog_rules(meta, v);
  return v;
}

}  // namespace semline::tokenizers
