// The vulkan backend's Mamba kernels (stations/ssm.h): the causal convolution and the selective
// scan as compute dispatches (ssm_conv.comp, ssm_scan.comp), one invocation per channel over the
// step's tokens, each token's state row from the step's uploaded slots.
#pragma once

#include <memory>

#include "backend/vulkan_backend.h"
#include "stations/ssm.h"

namespace semline::vk {

std::unique_ptr<stations::SsmKernels> make_ssm_kernels(VulkanBackend& be);

}  // namespace semline::vk
