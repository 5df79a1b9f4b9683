// The tokenizer metadata of a synthetic model: copied from a vocab GGUF, or generated.
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/model/gguf_writer.h"

namespace semline {

// <unk>, <s>, </s> and the 256 byte tokens come before any generated piece.
inline constexpr int64_t kMinGeneratedVocab = 3 + 256;

// A llama (SentencePiece, byte-fallback) vocabulary of n tokens: the specials, the byte tokens,
// then letter pieces with and without the word-boundary mark; returns n.
int64_t add_generated_vocab(gguf::GgufWriter& w, int64_t n);

// Copies every tokenizer.* entry of the file, in its order; returns its vocabulary size.
int64_t copy_vocab(gguf::GgufWriter& w, const std::filesystem::path& vocab_gguf);

}  // namespace semline
