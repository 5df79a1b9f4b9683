#include "core/engine/text_stream.h"

#include <algorithm>

namespace semline {

size_t utf8_complete_prefix(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the last lead byte and check its length.
  size_t n = s.size();
  size_t i = n;
  int back = 0;
  while (i > 0 && back < 4) {
    unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {
      size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      return (n - (i - 1) >= need) ? n : i - 1;
    }
    --i;
    ++back;
  }
  return n;  // only continuation bytes: invalid anyway, let them through
}

std::string TextStream::push(std::string_view bytes) {
  if (stopped_) return {};
  pending_ += bytes;
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    if (auto p = pending_.find(s); p != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, p);
      pending_.clear();
      return out;
    }
  }
  // Hold back the longest tail that is a prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stop_)
    for (size_t k = s.empty() ? 0 : std::min(s.size() - 1, pending_.size()); k > hold; --k)
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  size_t emit = utf8_complete_prefix(std::string_view(pending_).substr(0, pending_.size() - hold));
  std::string out = pending_.substr(0, emit);
  pending_.erase(0, emit);
  return out;
}

std::string TextStream::finish() {
  std::string out;
  size_t ok = utf8_complete_prefix(pending_);
  out = pending_.substr(0, ok);
  if (ok < pending_.size()) out += "\xEF\xBF\xBD";
  pending_.clear();
  return out;
}

}  // namespace semline
