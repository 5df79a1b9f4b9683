#include "spm.h"

#include <cstdio>
#include <queue>

#include "utf8.h"

namespace semline::tokenizers {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// "<0xXX>" -> XX; -1 for any other piece.
int parse_byte_piece(std::string_view p) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string unescape_spaces(std::string_view p) {
  std::string s;
  s.reserve(p.size());
  for (size_t i = 0; i < p.size();) {
    if (p.substr(i, kSpaceMark.size()) == kSpaceMark) {
      s += ' ';
      i += kSpaceMark.size();
    } else {
      s += p[i++];
    }
  }
  return s;
}

// Symbols form a doubly linked list over the text; a merged-away symbol has len 0.
struct Symbol {
  int32_t prev, next;
  uint32_t off, len;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t len;  // left.len + right.len when queued; a mismatch later means the pair is stale
};

struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmTokenizer::SpmTokenizer(const ModelView& model, const LogFn& log)
    : VocabTokenizer(read_vocab(MetaReader(model), true), model.path()) {
  MetaReader meta(model);
  add_bos_ = meta.find_bool("tokenizer.ggml.add_bos_token").value_or(true);
  add_space_prefix_ = meta.find_bool("tokenizer.ggml.add_space_prefix").value_or(true);

  bytes_.resize(vocab_.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const std::string& p = vocab_.pieces[id];
    switch (vocab_.types[id]) {
      case TokenType::Normal: bytes_[id] = unescape_spaces(p); break;
      case TokenType::UserDefined: bytes_[id] = p; break;
      case TokenType::Unknown: bytes_[id] = kReplacementChar; break;
      case TokenType::Byte: {
        int b = parse_byte_piece(p);
        if (b < 0)
          meta.fail("tokenizer.ggml.tokens", "entry " + std::to_string(id) + " '" + p +
                                                 "' has token type 6 (byte) but is not of the form <0xXX>");
        bytes_[id] = std::string(1, static_cast<char>(b));
        break;
      }
      default: break;  // control, unused and undefined tokens print nothing
    }
  }

  int missing = 0;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    int32_t id = vocab_.find(name);
    if (id < 0) id = vocab_.find(std::string(1, static_cast<char>(b)));
    if (id < 0) id = vocab_.unk, ++missing;
    byte_token_[b] = id;
  }
  if (log)
    log(LogLevel::Debug, "spm tokenizer: " + std::to_string(vocab_.size()) + " tokens, bos " +
                             std::to_string(vocab_.bos) + ", eos " + std::to_string(vocab_.eos) +
                             (add_bos_ ? ", adds bos" : "") + (add_space_prefix_ ? ", dummy prefix" : "") +
                             ", " + std::to_string(256 - missing) + " byte tokens");
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> out;
  if (starts_with_bos(add_bos)) out.push_back(vocab_.bos);
  std::string escaped;
  bool after_token = true;  // the dummy prefix goes before the text and after each user-defined token
  for (const Fragment& f : split_special(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_token = true;
      continue;
    }
    escaped.clear();
    if (add_space_prefix_ && after_token) escaped += kSpaceMark;
    for (char c : f.text) {
      if (c == ' ') escaped += kSpaceMark;
      else escaped += c;
    }
    merge(escaped, out);
    after_token = false;
  }
  return out;
}

void SpmTokenizer::merge(const std::string& s, std::vector<int32_t>& out) const {
  std::vector<Symbol> sym;
  sym.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    uint32_t len = utf8_next(s, pos).len;
    auto i = static_cast<int32_t>(sym.size());
    sym.push_back({i - 1, i + 1, static_cast<uint32_t>(pos), len});
    pos += len;
  }
  sym.back().next = -1;

  std::vector<Bigram> storage;
  storage.reserve(sym.size());
  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue(LowerPriority{}, std::move(storage));
  auto try_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    uint32_t len = sym[left].len + sym[right].len;
    if (len > vocab_.max_piece_len) return;
    int32_t id = vocab_.find(std::string_view(s).substr(sym[left].off, len));
    if (id >= 0) queue.push({vocab_.scores[id], left, right, len});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) try_pair(i, i + 1);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    std::string_view piece = std::string_view(s).substr(sym[i].off, sym[i].len);
    int32_t id = vocab_.find(piece);
    if (id >= 0) out.push_back(id);
    else spell_bytes(piece, out);
  }
}

void SpmTokenizer::spell_bytes(std::string_view symbol, std::vector<int32_t>& out) const {
  for (char c : symbol) {
    auto b = static_cast<uint8_t>(c);
    if (byte_token_[b] < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "%02X", b);
      fail(std::string("cannot spell byte 0x") + hex + " of the text: the vocabulary has no <0x" + hex +
           "> token and no tokenizer.ggml.unknown_token_id");
    }
    out.push_back(byte_token_[b]);
  }
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text = VocabTokenizer::decode(ids);
  if (!add_space_prefix_) return text;
  for (int32_t id : ids) {
    if (bytes_[id].empty()) continue;
    // The first token that prints anything carries the dummy prefix when it is a text piece.
    if (vocab_.types[id] == TokenType::Normal && bytes_[id][0] == ' ') text.erase(0, 1);
    break;
  }
  return text;
}

}  // namespace semline::tokenizers
