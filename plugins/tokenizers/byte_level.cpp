#include "byte_level.h"

#include "utf8.h"

namespace semline::tokenizers {

const ByteLevel& byte_level() {
  static const ByteLevel table = [] {
    ByteLevel t;
    t.byte_of_cp.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool shown = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      uint32_t cp = shown ? b : next++;
      utf8_append(t.text[b], cp);
      t.byte_of_cp[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return table;
}

}  // namespace semline::tokenizers
