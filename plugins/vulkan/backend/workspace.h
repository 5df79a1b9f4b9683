// Scratch memory shared by the stages of one backend. Their dispatches run in stream order, so
// each may use the whole area; each reserves what it needs when it is bound, and the area only
// grows then (or, for attention/dense, when a step attends further than any before).
#pragma once

#include <cstddef>
#include <memory>

#include "device/memory.h"

namespace semline::vk {

class VulkanBackend;
class VulkanBuffer;

class Workspace {
 public:
  explicit Workspace(VulkanBackend& be);
  ~Workspace();
  void reserve(size_t bytes);
  const GpuBuffer& buffer() const;
  VulkanBuffer& memory() { return *buf_; }  // the same area, for Tensors placed in it
  size_t size() const;

 private:
  VulkanBackend& be_;
  std::unique_ptr<VulkanBuffer> buf_;
};

// Hands out 64-byte-aligned pieces of the scratch area, as word offsets.
class ScratchLayout {
 public:
  uint32_t add_words(size_t words) {
    const size_t at = total_;
    total_ += (words * 4 + 63) / 64 * 64;
    return static_cast<uint32_t>(at / 4);
  }
  size_t bytes() const { return total_; }

 private:
  size_t total_ = 0;
};

}  // namespace semline::vk
