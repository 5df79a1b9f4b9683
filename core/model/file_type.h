// general.file_type: the dtype most weights of a model have, numbered as llama.cpp does.
#pragma once

#include <cstdint>

#include "semline/tensor.h"

namespace semline {

constexpr uint32_t llama_file_type(DType t) {
  switch (t) {
    case DType::F32: return 0;   // ALL_F32
    case DType::F16: return 1;   // MOSTLY_F16
    case DType::Q4_0: return 2;  // MOSTLY_Q4_0
    case DType::Q8_0: return 7;  // MOSTLY_Q8_0
    case DType::BF16: return 32; // MOSTLY_BF16
  }
  return 0;
}

// The dtype a weight matrix of row length `row` gets when a model targets `target`: block types
// need whole blocks per row, otherwise the matrix stays F32 (as llama.cpp falls back).
constexpr DType weight_dtype(DType target, int64_t row) {
  return row % dtype_block_size(target) == 0 ? target : DType::F32;
}

}  // namespace semline
