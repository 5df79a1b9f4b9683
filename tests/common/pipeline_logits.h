// The logits a line gives for a token sequence, fed in steps of any size: what the line tests
// (synthetic models, converted models, the vulkan backend) compare with their references.
#pragma once

#include <cstdint>
#include <vector>

#include "core/engine/pipeline.h"

namespace semline::testing {

// Logits of every position of `tokens` (one new sequence from position 0, freed after), fed in
// steps of `chunk` tokens.
std::vector<std::vector<float>> all_logits(Pipeline& p, const std::vector<int32_t>& tokens, int chunk);

}  // namespace semline::testing
