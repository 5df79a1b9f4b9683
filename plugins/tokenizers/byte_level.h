// GPT-2's byte-level alphabet: every byte is shown as one printable character, so that BPE
// pieces over bytes are readable strings. Printable Latin-1 bytes (0x21-0x7E, 0xA1-0xAC,
// 0xAE-0xFF) stand for themselves; the other 68 bytes take U+0100.. in byte order (space is
// U+0120 'Ġ', newline U+010A 'Ċ').
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace semline::tokenizers {

struct ByteLevel {
  std::array<std::string, 256> text;  // UTF-8 of the character standing for each byte
  // The byte a character stands for, -1 for characters outside the alphabet.
  int byte_of(uint32_t cp) const { return cp < byte_of_cp.size() ? byte_of_cp[cp] : -1; }

  std::array<int16_t, 324> byte_of_cp;  // 256 + 68 code points cover the alphabet
};

const ByteLevel& byte_level();

}  // namespace semline::tokenizers
