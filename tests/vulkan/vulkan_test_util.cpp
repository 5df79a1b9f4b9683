#include "vulkan/vulkan_test_util.h"

namespace semline::vktest {

std::unique_ptr<vk::VulkanBackend> make_backend(bool subgroups, size_t staging_bytes) {
  vk::BackendOptions o;
  o.subgroups = subgroups;
  o.staging_bytes = staging_bytes;
  return std::make_unique<vk::VulkanBackend>(o);
}

std::vector<bool> reduction_modes() {
  static const std::vector<bool> modes = [] {
    vk::BackendOptions o;
    vk::Device dev(o.device);
    return dev.caps.subgroup_arithmetic ? std::vector<bool>{true, false} : std::vector<bool>{false};
  }();
  return modes;
}

}  // namespace semline::vktest
