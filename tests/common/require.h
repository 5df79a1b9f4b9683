// What this machine is expected to run. SEMLINE_REQUIRE names the optional features (comma- or
// space-separated, e.g. "vulkan") whose absence is a failure rather than a skip: CI sets it, so a
// broken probe or device listing cannot turn a whole backend's tests into green skips.
#pragma once

#include <string>
#include <string_view>

#include <catch2/catch.hpp>

namespace semline::testing {

// Whether SEMLINE_REQUIRE names `feature`.
bool feature_required(std::string_view feature);

}  // namespace semline::testing

// A test that cannot run here: fails when SEMLINE_REQUIRE names the feature, else says
// "SKIPPED (needs FEATURE): why" (ctest reports the test skipped) and returns. Catch2 v2 has no
// skip of its own; a missing feature must neither pass silently nor fail where it is optional.
#define SEMLINE_SKIP_TEST(feature, why)                                                                   \
  do {                                                                                                    \
    if (::semline::testing::feature_required(feature))                                                    \
      FAIL("SEMLINE_REQUIRE names " << (feature) << ", but this test cannot run: " << why);          \
    WARN("SKIPPED (needs " << (feature) << "): " << why);                                            \
    return;                                                                                               \
  } while (0)
