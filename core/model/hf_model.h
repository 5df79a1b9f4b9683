// A Hugging Face folder as a model, presented in GGUF terms so that the architecture templates,
// the tokenizers and every command read it as they read a GGUF: config.json chooses the layout
// (core/model/hf_layout.h: GPT-2, or a llama-lineage decoder) that names the metadata and renames
// the tensors; the weights are model.safetensors or the shards model.safetensors.index.json lists;
// the vocabulary is tokenizer.json (core/model/hf_tokenizer.h), or for GPT-2 vocab.json (+
// merges.txt for byte-level BPE, without it one character per token).
//
// Tensors are views of the mapped files, except where the layouts differ: GPT-2's Conv1D weights
// ([in][out]) are transposed, llama's q/k rows reordered to llama.cpp's RoPE pairs, and a tensor
// the format left unaligned is copied.
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
