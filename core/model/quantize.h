// Re-encodes the weight matrices of a GGUF model to a smaller dtype.
#pragma once

#include <filesystem>
#include <string_view>

#include "core/model/gguf_writer.h"
#include "semline/tensor.h"

namespace semline {

// The dtype a tensor gets when a model is quantised to `target`: F32/F16/BF16 matrices (2-D) and
// stacks of expert matrices (3-D, quantised row by row, rows of n_embd or n_ff values) whose rows
// are whole blocks of the target take it; everything else keeps its dtype: norms, already
// quantised tensors, odd row lengths, and the MoE router (ffn_gate_inp), which llama.cpp keeps
// in float too because a rounded router changes which experts run.
DType quantize_choice(std::string_view name, const Tensor& t, DType target);

// Writes `in` to `out` with the weights re-encoded (target: Q8_0, Q4_0, F16 or BF16), metadata
// copied in order and general.file_type set for the target (llama.cpp's numbering). Tensors are
// converted one at a time, row by row.
void quantize_gguf(const std::filesystem::path& in, const std::filesystem::path& out, DType target,
                   const gguf::Progress& progress = {});

}  // namespace semline
