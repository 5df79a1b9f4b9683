// The character classes GPT-2's pre-tokenizer pattern tells apart.
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

}  // namespace semline::tokenizers
