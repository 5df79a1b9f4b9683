#include "bpe.h"

#include <algorithm>
#include <cstdio>

#include "byte_level.h"
#include "utf8.h"

namespace semline::tokenizers {

namespace {

constexpr std::string_view kPre = "tokenizer.ggml.pre";
constexpr std::string_view kMerges = "tokenizer.ggml.merges";

std::string from_byte_level(std::string_view piece) {
  const ByteLevel& bl = byte_level();
  std::string out;
  out.reserve(piece.size());
  for (size_t pos = 0; pos < piece.size();) {
    Utf8Unit u = utf8_next(piece, pos);
    int b = u.cp == kInvalidCodePoint ? -1 : bl.byte_of(u.cp);
    if (b >= 0) out += static_cast<char>(b);
    else out += piece.substr(pos, u.len);  // not of the alphabet: kept as written
    pos += u.len;
  }
  return out;
}

// Min-heap order: lowest rank first, then leftmost.
bool later(const auto& a, const auto& b) { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); }

}  // namespace

std::string bpe_pre_problem(const ModelView& model) {
  const std::string_view pre = MetaReader(model).find_string(kPre).value_or("default");
  if (PreTokenizer::named(pre)) return "";
  return std::string(kPre) + " is '" + std::string(pre) + "'; bpe supports: " + PreTokenizer::names();
}

BpeTokenizer::BpeTokenizer(const ModelView& model, const LogFn& log)
    : VocabTokenizer(read_vocab(MetaReader(model), false), model.path()) {
  MetaReader meta(model);
  if (std::string problem = bpe_pre_problem(model); !problem.empty()) fail(problem);
  const std::optional<std::string_view> pre = meta.find_string(kPre);
  pre_ = PreTokenizer::named(pre.value_or("default"));
  if (log && !pre)
    log(LogLevel::Warn, origin_ + ": " + std::string(kPre) +
                            " is absent; words are cut by llama.cpp's default pre-tokenizer, which may not be the "
                            "one the vocabulary was made with");
  // Without the key, llama.cpp's default: the Llama 3 family's pre-tokenizers start with BOS, the
  // rest do not.
  static const std::string_view kBosByDefault[] = {"llama3",    "llama-v3", "llama-bpe", "falcon3",
                                                   "falcon-h1", "pixtral",  "midm-2.0",  "lfm2"};
  const bool bos_default = pre && std::find(std::begin(kBosByDefault), std::end(kBosByDefault), *pre) !=
                                      std::end(kBosByDefault);
  add_bos_ = meta.find_bool("tokenizer.ggml.add_bos_token").value_or(bos_default);

  bytes_.resize(vocab_.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const std::string& p = vocab_.pieces[id];
    switch (vocab_.types[id]) {
      case TokenType::Normal:
      case TokenType::Byte: bytes_[id] = from_byte_level(p); break;
      case TokenType::UserDefined: bytes_[id] = p; break;
      case TokenType::Unknown: bytes_[id] = kReplacementChar; break;
      default: break;  // control, unused and undefined tokens print nothing
    }
  }

  const ByteLevel& bl = byte_level();
  for (int b = 0; b < 256; ++b) {
    int32_t id = vocab_.find(bl.text[b]);
    byte_token_[b] = id >= 0 ? id : vocab_.unk;
  }
  read_merges(meta, log);
}

void BpeTokenizer::read_merges(const MetaReader& meta, const LogFn& log) {
  const MetaValue& list = meta.strings(kMerges);
  merges_.reserve(list.count);
  std::string joined;
  size_t unusable = 0;
  for (size_t i = 0; i < list.strings.size(); ++i) {
    std::string_view m = list.strings[i];
    // Split at the first space after the first character: a piece may itself be a space.
    size_t cut = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (cut == std::string_view::npos)
      meta.fail(kMerges, "entry " + std::to_string(i) + " '" + std::string(m) +
                             "' is not two pieces separated by a space");
    std::string_view a = m.substr(0, cut), b = m.substr(cut + 1);
    joined.assign(a).append(b);
    int32_t ia = vocab_.find(a), ib = vocab_.find(b), ir = vocab_.find(joined);
    if (ia < 0 || ib < 0 || ir < 0) {
      ++unusable;  // a symbol is always a token here, so this merge could never apply
      continue;
    }
    merges_.try_emplace(key(ia, ib), Merge{static_cast<int32_t>(i), ir});
  }
  if (log) {
    log(LogLevel::Debug, "bpe tokenizer: " + std::to_string(vocab_.size()) + " tokens, " +
                             std::to_string(merges_.size()) + " merges, bos " + std::to_string(vocab_.bos) +
                             ", eos " + std::to_string(vocab_.eos) + (add_bos_ ? ", adds bos" : ""));
    if (unusable)
      log(LogLevel::Warn, origin_ + ": " + std::to_string(unusable) + " entries of " + std::string(kMerges) +
                              " name pieces that are not in the vocabulary; they are ignored");
  }
}

int32_t BpeTokenizer::byte_token(uint8_t b) const {
  if (byte_token_[b] < 0) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%02X", b);
    fail(std::string("cannot spell byte 0x") + hex + " of the text: its byte-level character '" +
         byte_level().text[b] + "' is not in the vocabulary and there is no tokenizer.ggml.unknown_token_id");
  }
  return byte_token_[b];
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (starts_with_bos(add_bos)) out.push_back(vocab_.bos);
  std::vector<Symbol> sym;
  std::vector<Pair> heap;
  for (const Fragment& f : split_special(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    const std::string clean = utf8_lenient(f.text);  // malformed bytes as llama.cpp reads them
    for (Span w : pre_->split(clean)) encode_word(std::string_view(clean).substr(w.off, w.len), out, sym, heap);
  }
  return out;
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<Symbol>& sym,
                               std::vector<Pair>& heap) const {
  if (pre_->ignore_merges()) {  // a word the vocabulary holds whole is that token
    std::string spelled;
    for (char c : word) spelled += byte_level().text[static_cast<uint8_t>(c)];
    if (const int32_t id = vocab_.find(spelled); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const auto n = static_cast<int32_t>(word.size());
  sym.clear();
  for (int32_t i = 0; i < n; ++i) sym.push_back({i - 1, i + 1, byte_token(static_cast<uint8_t>(word[i]))});
  sym.back().next = -1;

  heap.clear();
  auto try_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    auto it = merges_.find(key(sym[left].id, sym[right].id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, left, right, sym[left].id, sym[right].id, it->second.result});
    std::push_heap(heap.begin(), heap.end(), [](const Pair& a, const Pair& b) { return later(a, b); });
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_pair(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), [](const Pair& a, const Pair& b) { return later(a, b); });
    Pair p = heap.back();
    heap.pop_back();
    Symbol& l = sym[p.left];
    Symbol& r = sym[p.right];
    if (l.id != p.left_id || r.id != p.right_id) continue;
    l.id = p.result;
    r.id = -1;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = p.left;
    try_pair(l.prev, p.left);
    try_pair(p.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace semline::tokenizers
