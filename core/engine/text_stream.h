// Turns token bytes into text that is safe to print as it arrives: only whole UTF-8 characters
// leave, and text that could be the start of a stop string is held back until it cannot be.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace semline {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop = {}) : stop_(std::move(stop)) {}

  // Adds bytes; returns the text now safe to emit.
  std::string push(std::string_view bytes);
  // The sequence ended: returns what is left (incomplete characters become U+FFFD).
  std::string finish();
  // True once the text produced contains a stop string (the stop string itself is never emitted).
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_;
  std::string pending_;  // bytes not yet emitted
  bool stopped_ = false;
};

// Length of the longest prefix of s that ends on a UTF-8 character boundary.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace semline
