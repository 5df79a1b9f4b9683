// GPT-2's pre-tokenizer: cuts text into the words BPE then works on, one match at a time of
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out by hand. Bytes of malformed UTF-8 count as [^\s\p{L}\p{N}], so every byte of any
// input lands in exactly one word (llama.cpp reads them as U+FFFD, which falls in the same class).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace semline::tokenizers {

struct Span {
  size_t off, len;  // bytes
};

std::vector<Span> gpt2_split(std::string_view text);

}  // namespace semline::tokenizers
