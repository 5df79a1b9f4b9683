// The character classes the pre-tokenizers' patterns tell apart.
#pragma once

#include <cstdint>

namespace semline::tokenizers {

enum class CharClass : uint8_t {
  Letter,  // \p{L}: general categories Lu Ll Lt Lm Lo
  Number,  // \p{N}: Nd Nl No
  Space,   // \s: the White_Space property
  Other,   // everything else, bytes of malformed UTF-8 included
};

CharClass char_class(uint32_t cp);

// \p{P}: general categories Pc Pd Ps Pe Pi Pf Po.
bool is_punctuation(uint32_t cp);

}  // namespace semline::tokenizers
