// Hugging Face's tokenizer.json (with tokenizer_config.json and chat_template.jinja beside it) in
// GGUF terms, the tokenizer.ggml.* keys llama.cpp's converter writes, so that semline's tokenizers
// read a folder as they read a GGUF:
//
//   BPE, byte_fallback false   a byte-level BPE: tokenizer.ggml.model "gpt2", tokens and merges as
//                              stored, and `pre` recognised from the pre_tokenizer (GPT-2's
//                              ByteLevel, Llama 3's and Qwen2's Split patterns, StarCoder's Digits);
//   BPE, byte_fallback true    a SentencePiece BPE converted to tokenizer.json (Llama 2, Mistral,
//                              Phi-3): tokenizer.ggml.model "llama", <0xNN> pieces as byte tokens,
//                              and each piece's score minus the rank of the first merge that makes
//                              it, so that SentencePiece's highest-score-first merging is HF's
//                              lowest-rank-first.
//
// Added tokens take their ids (special: control; else user-defined); ids past the tokenizer up to
// the model's vocabulary are unused "[PAD{id}]" pieces, as llama.cpp pads them. bos/eos/unk/pad
// come from tokenizer_config.json (else config.json), add_bos/add_eos from it or the post-processor,
// and the chat template from it (or chat_template.jinja). Anything that changes the tokenization
// and that these do not cover (another model type, normaliser or pre-tokenizer) is refused by name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/model/owned_meta.h"

namespace semline::hf {

struct TokenizerFiles {
  std::filesystem::path folder;
  int64_t n_vocab = 0;  // the model's vocabulary (embedding rows)
  std::optional<int64_t> bos_token_id, eos_token_id;  // config.json's
};

// Adds the tokenizer.ggml.* keys to `meta`; returns one line on what was read.
std::string read_tokenizer_json(const TokenizerFiles& files, OwnedMeta& meta);

}  // namespace semline::hf
