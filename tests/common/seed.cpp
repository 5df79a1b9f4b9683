#include "common/seed.h"

#include <cstdio>
#include <cstdlib>

namespace semline::testing {

uint32_t seed() {
  static const uint32_t s = [] {
    const char* env = std::getenv("SEMLINE_TEST_SEED");
    const uint32_t v = env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("seed %u (set SEMLINE_TEST_SEED=%u to repeat)\n", v, v);
    std::fflush(stdout);
    return v;
  }();
  return s;
}

std::mt19937& rng() {
  static std::mt19937 r(seed());
  return r;
}

}  // namespace semline::testing
