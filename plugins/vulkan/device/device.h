// One Vulkan device opened for compute: instance, the chosen physical device, a logical device
// with one compute queue, and what the kernels need to know about it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <semline/stage.h>

#include "device/api.h"

namespace semline::vk {

struct DeviceCaps {
  std::string name;             // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string type;             // "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other"
  uint32_t api_version = 0;
  size_t device_local_bytes = 0;  // the largest device-local heap
  uint64_t max_storage_range = 0; // largest storage buffer one descriptor may bind
  uint64_t max_allocation = 0;
  uint32_t max_shared_bytes = 0;
  uint32_t max_groups[3] = {0, 0, 0};
  bool subgroup_arithmetic = false;  // subgroupAdd/Max in compute shaders
  uint32_t subgroup_size = 0;
};

// A physical device as the loader lists it, and why it cannot be used (empty: it can).
struct DeviceListing {
  uint32_t index = 0;
  std::string name, type, unusable;
};

class Device {
 public:
  // choice: "" takes the first discrete GPU, else the first usable device (a CPU device such as
  // llvmpipe included); a number takes the device of that index; other text takes the first
  // device whose name contains it (case-insensitive). Throws naming the devices there are.
  explicit Device(const std::string& choice, const LogFn& log = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // A memory type among `allowed` (a bit mask) with every `required` property, preferring one
  // with the `preferred` ones too; throws when there is none.
  uint32_t memory_type(uint32_t allowed, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const;
  bool memory_is(uint32_t type, VkMemoryPropertyFlags flags) const {
    return (mem_.memoryTypes[type].propertyFlags & flags) == flags;
  }

  Api fn;
  VkInstance instance = VK_NULL_HANDLE;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  uint32_t queue_family = 0;
  DeviceCaps caps;

 private:
  VkPhysicalDeviceMemoryProperties mem_{};
};

// Every physical device the loader sees, or the reason none can be listed (no loader, no
// instance); used by the backend's probe.
std::vector<DeviceListing> list_devices(std::string* why);

}  // namespace semline::vk
