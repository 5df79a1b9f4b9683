// Re-encodes the weight matrices of a GGUF model to a smaller dtype.
#pragma once

#include <filesystem>

#include "core/model/gguf_writer.h"
#include "semline/tensor.h"

namespace semline {

// The dtype a tensor gets when a model is quantised to `target`: 2-D F32/F16/BF16 tensors whose
// rows are whole blocks of the target take it; everything else (norms, already-quantised
// tensors, odd row lengths) keeps its dtype.
DType quantize_choice(const Tensor& t, DType target);

// Writes `in` to `out` with the weights re-encoded (target: Q8_0, Q4_0, F16 or BF16), metadata
// copied in order and general.file_type set for the target (llama.cpp's numbering). Tensors are
// converted one at a time, row by row.
void quantize_gguf(const std::filesystem::path& in, const std::filesystem::path& out, DType target,
                   const gguf::Progress& progress = {});

}  // namespace semline
