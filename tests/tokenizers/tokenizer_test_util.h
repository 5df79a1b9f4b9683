// Shared by the tokenizer tests: the vocabulary files under models/, opened once per run.
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/model/gguf.h"
#include "semline/error.h"
#include "tokenizers/bpe.h"
#include "tokenizers/spm.h"

namespace semline::test {

inline const gguf::GgufFile& model_file(const std::string& relative) {
  static std::map<std::string, std::unique_ptr<gguf::GgufFile>> open;
  auto& f = open[relative];
  if (!f) f = gguf::GgufFile::open(std::string(SEMLINE_MODELS_DIR) + "/" + relative);
  return *f;
}

inline const tokenizers::SpmTokenizer& llama_spm() {
  static tokenizers::SpmTokenizer t(model_file("vocab/ggml-vocab-llama-spm.gguf"), {});
  return t;
}
inline const tokenizers::SpmTokenizer& stories260k() {
  static tokenizers::SpmTokenizer t(model_file("gguf/stories260K.gguf"), {});
  return t;
}
inline const tokenizers::BpeTokenizer& gpt2() {
  static tokenizers::BpeTokenizer t(model_file("vocab/ggml-vocab-gpt-2.gguf"), {});
  return t;
}

// Bytes shown with non-printable ones as \xNN, for failure messages.
inline std::string shown(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    }
  }
  return out;
}

// Runs `fn`, which must throw a semline::Error whose message contains every one of `parts`.
template <class Fn>
void require_error(Fn&& fn, std::initializer_list<std::string_view> parts) {
  try {
    fn();
  } catch (const Error& e) {
    std::string msg = e.what();
    INFO("message: " << msg);
    for (std::string_view p : parts) CHECK(msg.find(p) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
    return;
  }
  FAIL("no semline::Error was thrown");
}

}  // namespace semline::test
