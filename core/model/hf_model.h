// A Hugging Face GPT-2 folder as a model: config.json + model.safetensors (+ vocab.json, and
// merges.txt for a byte-level BPE vocabulary), presented in GGUF terms so that the `gpt2`
// architecture template, the tokenizers and every command read it as they read a GGUF:
//
//   metadata  general.architecture "gpt2", gpt2.* from config.json (context_length = n_positions,
//             embedding_length = n_embd, feed_forward_length = n_inner or 4 n_embd, block_count =
//             n_layer, attention.head_count = n_head, attention.layer_norm_epsilon,
//             feed_forward_activation "gelu" | "gelu_tanh" from activation_function), and the
//             tokenizer: with merges.txt tokenizer.ggml.model "gpt2" (pre "gpt-2", tokens, merges,
//             bos/eos ids marked control), without it "char" (every vocab.json entry one UTF-8
//             character); bos/eos ids only where config.json names them.
//   tensors   renamed to llama.cpp's gpt2 names (transformer.h.L.attn.c_attn -> blk.L.attn_qkv,
//             ...); the Conv1D weights, stored [in][out], transposed into owned memory to the
//             [out][in] rows of every other matrix; the rest are views of the mapped file (copied
//             only when the file places them unaligned).
#pragma once

#include <filesystem>
#include <memory>

#include "core/model/model_file.h"
#include "core/model/safetensors.h"

namespace semline::hf {

// A folder, or a path whose file name is config.json.
bool is_hf_path(const std::filesystem::path& path);

// Opens the folder `path` names (or holds, for a config.json); errors name the file at fault.
std::unique_ptr<ModelFile> open_folder(const std::filesystem::path& path, const safetensors::Limits& limits = {});

}  // namespace semline::hf
