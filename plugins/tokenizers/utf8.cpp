#include "utf8.h"

namespace semline::tokenizers {

Utf8Unit utf8_next(std::string_view s, size_t pos) {
  constexpr Utf8Unit bad{kInvalidCodePoint, 1};
  auto b = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  uint8_t c = b(0);
  if (c < 0x80) return {c, 1};
  uint32_t len, cp, min;
  if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
  else return bad;
  if (s.size() - pos < len) return bad;
  for (uint32_t i = 1; i < len; ++i) {
    if ((b(i) & 0xC0) != 0x80) return bad;
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return bad;
  return {cp, len};
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lenient(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const Utf8Unit u = utf8_next(s, pos);
    if (u.cp != kInvalidCodePoint) {  // well-formed: as it is
      out.append(s.substr(pos, u.len));
      pos += u.len;
      continue;
    }
    const auto c = static_cast<uint8_t>(s[pos]);
    const uint32_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    uint32_t cp = c & (0x7F >> len);
    bool ok = len > 0 && s.size() - pos >= len;
    for (uint32_t i = 1; ok && i < len; ++i) {
      const auto b = static_cast<uint8_t>(s[pos + i]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (ok && cp <= 0x10FFFF) {
      utf8_append(out, cp);
      pos += len;
    } else {
      out += "\xEF\xBF\xBD";
      pos += 1;
    }
  }
  return out;
}

}  // namespace semline::tokenizers
