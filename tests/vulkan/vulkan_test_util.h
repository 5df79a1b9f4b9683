// Shared pieces of the vulkan plugin tests: the plugin fixtures of tests/common, the vulkan
// plugin's entries, device rows (the station harness's), and the test device.
//
// Every test needs a Vulkan device (llvmpipe, a CPU implementation, counts). Where there is none
// the test says SKIPPED with the reason and returns, or fails where SEMLINE_REQUIRE names vulkan
// (common/require.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/compare.h"
#include "common/plugin_fixtures.h"
#include "common/require.h"
#include "stations/harness.h"

#include "backend/vulkan_backend.h"

namespace semline::vktest {

// The plugin fixtures, as the tests of this backend name them.
using namespace testing;

// Why no Vulkan device can run here (empty: one can).
inline std::string no_device_reason() { return stationtest::Vulkan::unavailable(); }

// A fresh backend on the first usable device; subgroups=false forces the shared-memory kernels.
std::unique_ptr<vk::VulkanBackend> make_backend(bool subgroups = true, size_t staging_bytes = 16u << 20);

// Both reduction paths the device offers: {true, false} with subgroup arithmetic, {false} without.
std::vector<bool> reduction_modes();

// A test without a Vulkan device skips, or fails where SEMLINE_REQUIRE names vulkan.
#define SEMLINE_REQUIRE_VULKAN()                                          \
  do {                                                                    \
    const std::string why_ = ::semline::vktest::no_device_reason();      \
    if (!why_.empty()) SEMLINE_SKIP_TEST("vulkan", why_); \
  } while (0)

// The vulkan plugin's entries, registered once.
inline const RecordingRegistry& vulkan_entries() { return stationtest::Vulkan::entries(); }

using stationtest::read_back;
// F32 rows on the device with their host copy.
using DeviceRows = stationtest::Rows;

}  // namespace semline::vktest
