// A VkBuffer with its own memory: device-local for tensors, host-visible and mapped for staging.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device/device.h"

namespace semline::vk {

enum class MemoryKind {
  Device,    // device-local; no host address
  Upload,    // host-visible, coherent, mapped: the host writes, the device copies out
  Readback,  // host-visible, coherent (cached when possible), mapped: the device copies in
};

class GpuBuffer {
 public:
  // Rounds the size up to a multiple of 4 (fills and shader words need it); never zero.
  GpuBuffer(Device& dev, size_t bytes, MemoryKind kind);
  ~GpuBuffer();
  GpuBuffer(const GpuBuffer&) = delete;
  GpuBuffer& operator=(const GpuBuffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  size_t size() const { return size_; }       // the size asked for
  size_t capacity() const { return alloc_; }   // the buffer's size (rounded up)
  void* mapped() const { return mapped_; }     // null for device memory
  uint64_t id() const { return id_; }          // unique in the process, never reused

 private:
  Device& dev_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  size_t size_ = 0, alloc_ = 0;
  void* mapped_ = nullptr;
  uint64_t id_ = 0;
};

}  // namespace semline::vk
