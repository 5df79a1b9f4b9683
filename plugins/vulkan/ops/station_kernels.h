// The vulkan backend's kernels for the stations written once (stations/kernels.h): weights copied
// to the device once, products through the matrix-vector or tiled kernels (side by side products
// recorded as one concurrent group), norms, activations and gathers as compute dispatches.
#pragma once

#include <memory>

#include "backend/vulkan_backend.h"
#include "stations/kernels.h"

namespace semline::vk {

std::unique_ptr<stations::Kernels> make_station_kernels(VulkanBackend& be);

}  // namespace semline::vk
