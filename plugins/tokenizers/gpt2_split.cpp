#include "gpt2_split.h"

#include <cstdint>

#include "unicode_class.h"
#include "utf8.h"

namespace semline::tokenizers {

namespace {

struct Char {
  uint32_t cp;
  uint32_t off;  // byte offset in the text
  CharClass cls;
};

}  // namespace

std::vector<Span> gpt2_split(std::string_view text) {
  std::vector<Char> cs;
  cs.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    Utf8Unit u = utf8_next(text, pos);
    cs.push_back({u.cp, static_cast<uint32_t>(pos), char_class(u.cp)});
    pos += u.len;
  }
  const size_t n = cs.size();
  auto cp_at = [&](size_t i) { return i < n ? cs[i].cp : kInvalidCodePoint; };
  auto is = [&](size_t i, CharClass c) { return i < n && cs[i].cls == c; };

  std::vector<Span> words;
  words.reserve(n / 4 + 1);
  size_t start = 0;
  auto emit = [&](size_t end) {
    size_t off = cs[start].off;
    size_t stop = end < n ? cs[end].off : text.size();
    words.push_back({off, stop - off});
    start = end;
  };

  while (start < n) {
    size_t pos = start;
    uint32_t cp = cs[pos].cp;

    if (cp == '\'') {  // 's 't 'm 'd 're 've 'll
      uint32_t c1 = cp_at(pos + 1), c2 = cp_at(pos + 2);
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(pos + 2);
        continue;
      }
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        emit(pos + 3);
        continue;
      }
    }

    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class.
    size_t body = cp == ' ' ? pos + 1 : pos;
    if (body < n && cs[body].cls != CharClass::Space) {
      CharClass cls = cs[body].cls;
      size_t end = body;
      while (is(end, cls)) ++end;
      emit(end);
      continue;
    }

    // "\s+(?!\S)" leaves the last space of a run to the word that follows; "\s+" takes the rest.
    size_t end = pos;
    while (is(end, CharClass::Space)) ++end;
    if (end - pos > 1 && end < n) --end;
    emit(end);
  }
  return words;
}

}  // namespace semline::tokenizers
