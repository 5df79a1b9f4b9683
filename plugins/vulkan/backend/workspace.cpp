#include "backend/workspace.h"

#include "backend/vulkan_backend.h"

namespace semline::vk {

Workspace::Workspace(VulkanBackend& be) : be_(be), buf_(std::make_unique<VulkanBuffer>(be, 256)) {}

Workspace::~Workspace() = default;

void Workspace::reserve(size_t bytes) {
  if (buf_->size() >= bytes) return;
  be_.check_binding_size(bytes, "the stages' scratch area (lower runtime.max_batch_tokens to shrink it)");
  buf_.reset();  // finishes recorded work that uses it first
  buf_ = std::make_unique<VulkanBuffer>(be_, bytes);
}

const GpuBuffer& Workspace::buffer() const { return buf_->gpu(); }

size_t Workspace::size() const { return buf_->size(); }

}  // namespace semline::vk
