#include "unicode_class.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace semline::tokenizers {

namespace {

struct CodeRange {
  uint32_t first, last;
};

#include "unicode_ranges.inc"

template <size_t N>
bool in_ranges(const CodeRange (&ranges)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](uint32_t c, const CodeRange& r) { return c < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

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

CharClass char_class(uint32_t cp) { return cp < 128 ? kAscii[cp] : classify(cp); }

bool is_punctuation(uint32_t cp) { return in_ranges(kPunctuationRanges, cp); }

}  // namespace semline::tokenizers
