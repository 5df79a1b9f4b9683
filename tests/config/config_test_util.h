// Shared by the config tests: the message a bad config produces.
#pragma once

#include <string>
#include <string_view>

#include "core/config/config.h"
#include "semline/error.h"

namespace semline::test {

// The error parse_config throws for `text` (named "t.toml"), or "" when it parses.
inline std::string config_error_of(std::string_view text) {
  try {
    parse_config(text, "t.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The error apply_override throws, or "" when it applies.
inline std::string override_error_of(Config& c, std::string_view assignment) {
  try {
    apply_override(c, assignment);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace semline::test
