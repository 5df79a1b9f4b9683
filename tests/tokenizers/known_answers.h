// Known answers: test strings and the ids llama.cpp gives them (see known_answers.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace semline::test {

struct KnownAnswer {
  std::string_view text;
  std::vector<int32_t> ids;
};

std::span<const KnownAnswer> llama_spm_answers();    // vocab/ggml-vocab-llama-spm.gguf
std::span<const KnownAnswer> stories260k_answers();  // gguf/stories260K.gguf
std::span<const KnownAnswer> gpt2_answers();         // vocab/ggml-vocab-gpt-2.gguf

}  // namespace semline::test
