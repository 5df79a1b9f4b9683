// The seed of a test process's random inputs: SEMLINE_TEST_SEED when set, else a fresh one,
// printed once ("seed N (set SEMLINE_TEST_SEED=N to repeat)"), so every run explores new inputs
// and any failure can be replayed.
#pragma once

#include <cstdint>
#include <random>

namespace semline::testing {

uint32_t seed();
std::mt19937& rng();  // seeded with seed()

}  // namespace semline::testing
