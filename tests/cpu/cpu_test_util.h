// Shared pieces of the cpu plugin tests: the plugin fixtures of tests/common and the instruction
// sets this machine runs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/compare.h"
#include "common/plugin_fixtures.h"

#include "kernels/kernels.h"

namespace semline::cputest {

using testing::FakeModel;
using testing::make_weight;
using testing::random_floats;
using testing::RecordingRegistry;
using testing::rel_err;
using testing::rng;
using testing::seed;
using testing::Weight;

// The instruction sets this machine runs (always scalar, then avx2 and avx512 when present).
std::vector<cpu::Isa> runnable_isas();

std::vector<double> to_double(const float* p, int64_t n);

}  // namespace semline::cputest
