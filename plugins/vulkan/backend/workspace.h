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

}  // namespace semline::vk
