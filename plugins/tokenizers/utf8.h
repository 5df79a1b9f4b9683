// UTF-8 decoding that never fails: a byte that starts no well-formed character stands alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace semline::tokenizers {

inline constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

// The character starting at s[pos]: its length in bytes and code point. Overlong forms,
// surrogates, values past U+10FFFF, stray continuation bytes and truncated sequences give length
// 1 and kInvalidCodePoint, so every byte of any input belongs to exactly one unit.
struct Utf8Unit {
  uint32_t cp;
  uint32_t len;
};
Utf8Unit utf8_next(std::string_view s, size_t pos);

void utf8_append(std::string& out, uint32_t cp);

// The text as llama.cpp reads it before byte-level BPE: each sequence decoded by its lead byte's
// length alone, so overlong forms and surrogates pass (written back in their shortest form), and
// every byte that starts no sequence, or one past U+10FFFF, becomes U+FFFD.
std::string utf8_lenient(std::string_view s);

}  // namespace semline::tokenizers
