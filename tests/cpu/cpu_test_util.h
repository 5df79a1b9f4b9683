// Shared pieces of the cpu plugin tests: the plugin fixtures of tests/common and the instruction
// sets this machine runs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/compare.h"
#include "common/plugin_fixtures.h"

#include "kernels/kernels.h"

namespace semline::cputest {

// The plugin fixtures, as the tests of this backend name them.
using namespace testing;

// The instruction sets this machine runs (always scalar, then avx2 and avx512 when present).
std::vector<cpu::Isa> runnable_isas();

std::vector<double> to_double(const float* p, int64_t n);

}  // namespace semline::cputest
