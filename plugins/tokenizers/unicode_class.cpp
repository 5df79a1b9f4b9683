#include "unicode_class.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace semline::tokenizers {

namespace {

struct CodeMap {
  uint32_t first, last, to;  // every code point of [first, last] maps to `to`
};
struct CodePair {
  uint32_t from, to;
};

#include "unicode_ranges.inc"

bool is_space(uint32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

CharClass classify(uint32_t cp) {
  if (is_space(cp)) return CharClass::Space;
  if (in_ranges(kLetterRanges, cp)) return CharClass::Letter;
  if (in_ranges(kNumberRanges, cp)) return CharClass::Number;
  return CharClass::Other;
}

// Most text is ASCII: answer it from a table.
const std::array<CharClass, 128> kAscii = [] {
  std::array<CharClass, 128> t{};
  for (uint32_t c = 0; c < 128; ++c) t[c] = classify(c);
  return t;
}();

}  // namespace

bool in_ranges(std::span<const CodeRange> ranges, uint32_t cp) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp, [](uint32_t c, const CodeRange& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

CharClass char_class(uint32_t cp) { return cp < 128 ? kAscii[cp] : classify(cp); }

bool is_punctuation(uint32_t cp) { return in_ranges(kPunctuationRanges, cp); }
bool is_mark(uint32_t cp) { return in_ranges(kMarkRanges, cp); }
bool is_symbol(uint32_t cp) { return in_ranges(kSymbolRanges, cp); }
bool is_control(uint32_t cp) { return in_ranges(kControlRanges, cp); }

uint32_t nfd_base(uint32_t cp) {
  auto it = std::upper_bound(std::begin(kNfdBase), std::end(kNfdBase), cp,
                             [](uint32_t c, const CodeMap& m) { return c < m.first; });
  return it != std::begin(kNfdBase) && cp <= std::prev(it)->last ? std::prev(it)->to : cp;
}

uint32_t to_lower(uint32_t cp) {
  auto it = std::lower_bound(std::begin(kLowercase), std::end(kLowercase), cp,
                             [](const CodePair& p, uint32_t c) { return p.from < c; });
  return it != std::end(kLowercase) && it->from == cp ? it->to : cp;
}

}  // namespace semline::tokenizers
