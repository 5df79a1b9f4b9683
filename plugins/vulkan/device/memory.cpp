#include "device/memory.h"

#include <atomic>
#include <string>

#include <semline/error.h>

namespace semline::vk {

GpuBuffer::GpuBuffer(Device& dev, size_t bytes, MemoryKind kind) : dev_(dev), size_(bytes) {
  static std::atomic<uint64_t> next_id{1};
  id_ = next_id++;
  alloc_ = bytes < 4 ? 4 : (bytes + 3) / 4 * 4;
  if (alloc_ > dev.caps.max_allocation && dev.caps.max_allocation > 0)
    throw Error("vulkan backend: a buffer of " + std::to_string(bytes) + " bytes exceeds the largest allocation of \"" +
                dev.caps.name + "\" (" + std::to_string(dev.caps.max_allocation) + " bytes)");
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = alloc_;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(dev.fn.vkCreateBuffer(dev.device, &bi, nullptr, &buffer_), "vkCreateBuffer");
  try {
    VkMemoryRequirements req{};
    dev.fn.vkGetBufferMemoryRequirements(dev.device, buffer_, &req);
    uint32_t type = 0;
    switch (kind) {
      case MemoryKind::Device:
        type = dev.memory_type(req.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        break;
      case MemoryKind::Upload:
        type = dev.memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
        break;
      case MemoryKind::Readback:
        type = dev.memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                               VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        break;
    }
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type;
    VkResult r = dev.fn.vkAllocateMemory(dev.device, &ai, nullptr, &memory_);
    if (r != VK_SUCCESS)
      throw Error(std::string("vulkan backend: cannot allocate ") + std::to_string(bytes) + " bytes of " +
                  (kind == MemoryKind::Device ? "device" : "staging") + " memory on \"" + dev.caps.name +
                  "\": " + result_name(r));
    check(dev.fn.vkBindBufferMemory(dev.device, buffer_, memory_, 0), "vkBindBufferMemory");
    if (kind != MemoryKind::Device) check(dev.fn.vkMapMemory(dev.device, memory_, 0, VK_WHOLE_SIZE, 0, &mapped_), "vkMapMemory");
  } catch (...) {
    if (memory_) dev.fn.vkFreeMemory(dev.device, memory_, nullptr);
    dev.fn.vkDestroyBuffer(dev.device, buffer_, nullptr);
    throw;
  }
}

GpuBuffer::~GpuBuffer() {
  if (mapped_) dev_.fn.vkUnmapMemory(dev_.device, memory_);
  dev_.fn.vkDestroyBuffer(dev_.device, buffer_, nullptr);
  dev_.fn.vkFreeMemory(dev_.device, memory_, nullptr);
}

}  // namespace semline::vk
