// Hugging Face folders written from GGUF models, as Hugging Face's own files lay them out, for the
// tests of the folder reader: a folder and the GGUF it was written from must be the same model.
//
// The layout follows transformers (config.json of LlamaConfig, MistralConfig, Qwen2Config,
// Qwen3Config, Phi3Config, Gemma2Config, Starcoder2Config, StableLmConfig, GPTNeoXConfig;
// model.layers.L.* or gpt_neox.layers.L.* names; llama's q/k rows in rotate-half order, each
// head's even pair members first; GPT-NeoX's fused qkv rows per head; Gemma's norm weights w of
// its 1 + w) and its tokenizer converters (tokenizer.json: a byte-level BPE
// with the pre-tokenizer of its pattern, or a SentencePiece BPE with byte_fallback whose merges
// are every split of every piece into two pieces, highest piece score first, as
// transformers' SentencePieceExtractor orders them).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/model/model_file.h"
#include "semline/model.h"

namespace semline::testing {

// tokenizer.json for the vocabulary (tokenizer.ggml.*) of `model`.
nlohmann::json tokenizer_json_of(const ModelView& model);

// tokenizer_config.json: bos/eos by text, add_bos_token where the model says.
nlohmann::json tokenizer_config_of(const ModelView& model);

// Writes `model` (F32 weights of a llama, qwen2, qwen3, phi3, gemma2, starcoder2, stablelm or gptneox) to `dir`: config.json, the weights
// in `shards` safetensors files with model.safetensors.index.json (one file: model.safetensors),
// tokenizer.json and tokenizer_config.json. A llama with attention.sliding_window is written as
// MistralForCausalLM.
void write_hf_folder(const ModelFile& model, const std::filesystem::path& dir, int shards = 2);

}  // namespace semline::testing
