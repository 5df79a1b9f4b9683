// The character classes the pre-tokenizers and normalisers tell apart, and the Unicode mappings
// they use (tables generated from the Unicode database: gen_unicode_ranges.py).
#pragma once

#include <cstdint>
#include <span>

namespace semline::tokenizers {

enum class CharClass : uint8_t {
  Letter,  // \p{L}: general categories Lu Ll Lt Lm Lo
  Number,  // \p{N}: Nd Nl No
  Space,   // \s: the White_Space property
  Other,   // everything else, bytes of malformed UTF-8 included
};

CharClass char_class(uint32_t cp);

bool is_punctuation(uint32_t cp);  // \p{P}: Pc Pd Ps Pe Pi Pf Po
bool is_mark(uint32_t cp);         // \p{M}: Mn Mc Me
bool is_symbol(uint32_t cp);       // \p{S}: Sm Sc Sk So
bool is_control(uint32_t cp);      // \p{C} but unassigned: Cc Cf Co Cs

// The first code point of cp's NFD form (é -> e): what stripping accents keeps.
uint32_t nfd_base(uint32_t cp);
// The simple lowercase mapping (the first character of the full one).
uint32_t to_lower(uint32_t cp);

// Inclusive code point ranges, sorted; membership by binary search.
struct CodeRange {
  uint32_t first, last;
};
bool in_ranges(std::span<const CodeRange> ranges, uint32_t cp);

}  // namespace semline::tokenizers
