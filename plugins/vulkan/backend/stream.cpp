#include "backend/stream.h"

#include <algorithm>
#include <cstring>
#include <string>

#include <semline/error.h>

namespace semline::vk {
namespace {

constexpr size_t kAlign = 16;
constexpr size_t kRecordings = 8;  // command buffers kept for replay
// A device that has not finished a submission in this long is taken to be hung.
constexpr uint64_t kWaitNs = 600ull * 1000 * 1000 * 1000;

size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

template <class Handle>
uint64_t bits(Handle h) {
  uint64_t v = 0;
  std::memcpy(&v, &h, sizeof h < sizeof v ? sizeof h : sizeof v);
  return v;
}

}  // namespace

VulkanStream::VulkanStream(Device& dev, size_t staging_bytes)
    : dev_(dev),
      ring_bytes_(staging_bytes),
      up_(std::make_unique<GpuBuffer>(dev, staging_bytes, MemoryKind::Upload)),
      down_(std::make_unique<GpuBuffer>(dev, staging_bytes, MemoryKind::Readback)),
      recordings_(kRecordings) {
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = dev.queue_family;
  check(dev.fn.vkCreateCommandPool(dev.device, &pi, nullptr, &pool_), "vkCreateCommandPool");
  std::vector<VkCommandBuffer> cbs(kRecordings);
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = static_cast<uint32_t>(kRecordings);
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VkResult r = dev.fn.vkAllocateCommandBuffers(dev.device, &ai, cbs.data());
  if (r == VK_SUCCESS) r = dev.fn.vkCreateFence(dev.device, &fi, nullptr, &fence_);
  if (r != VK_SUCCESS) {
    dev.fn.vkDestroyCommandPool(dev.device, pool_, nullptr);
    check(r, "creating the command buffers and fence");
  }
  for (size_t i = 0; i < kRecordings; ++i) recordings_[i].cb = cbs[i];
}

VulkanStream::~VulkanStream() {
  dev_.fn.vkDestroyFence(dev_.device, fence_, nullptr);
  dev_.fn.vkDestroyCommandPool(dev_.device, pool_, nullptr);  // frees the command buffers
}

VulkanStream::Command& VulkanStream::add(Command::Kind kind) {
  Command& c = log_.emplace_back();
  c.kind = kind;
  // The first command of a submission waits for what earlier ones wrote (a barrier's first scope
  // reaches back over everything submitted before it on the queue).
  c.barrier = log_.size() == 1 || (written_ && !concurrent_);
  if (c.barrier) written_ = false;
  return c;
}

void VulkanStream::begin_concurrent() {
  // The group's first command takes the barrier for what came before; the rest none.
  concurrent_ = false;
  if (written_) add(Command::Kind::Fill).size = 0;  // an empty fill: only its barrier is recorded
  concurrent_ = true;
}

void VulkanStream::end_concurrent() { concurrent_ = false; }

void VulkanStream::upload(const void* src, const GpuBuffer& dst, size_t dst_offset, size_t bytes) {
  const char* from = static_cast<const char*>(src);
  while (bytes > 0) {
    const size_t chunk = std::min(bytes, ring_bytes_);
    if (up_head_ + chunk > ring_bytes_) flush();
    std::memcpy(static_cast<char*>(up_->mapped()) + up_head_, from, chunk);
    Command& c = add(Command::Kind::Copy);
    c.src = up_->handle();
    c.dst = dst.handle();
    c.src_offset = up_head_;
    c.dst_offset = dst_offset;
    c.size = chunk;
    written_ = true;
    up_head_ = align_up(up_head_ + chunk);
    from += chunk;
    dst_offset += chunk;
    bytes -= chunk;
  }
}

void VulkanStream::download(const GpuBuffer& src, size_t src_offset, void* dst, size_t bytes) {
  char* to = static_cast<char*>(dst);
  while (bytes > 0) {
    const size_t chunk = std::min(bytes, ring_bytes_);
    if (down_head_ + chunk > ring_bytes_) flush();
    Command& c = add(Command::Kind::Copy);
    c.src = src.handle();
    c.dst = down_->handle();
    c.src_offset = src_offset;
    c.dst_offset = down_head_;
    c.size = chunk;
    written_ = true;
    reads_.push_back({down_head_, to, chunk});
    down_head_ = align_up(down_head_ + chunk);
    to += chunk;
    src_offset += chunk;
    bytes -= chunk;
  }
}

void VulkanStream::fill_zero(const GpuBuffer& dst) {
  Command& c = add(Command::Kind::Fill);
  c.dst = dst.handle();
  c.size = VK_WHOLE_SIZE;
  written_ = true;
}

void VulkanStream::dispatch(const Kernel& k, VkDescriptorSet set, const void* push, uint32_t push_bytes, uint32_t gx,
                            uint32_t gy) {
  if (push_bytes > kPushBytes || push_bytes % 4 != 0)
    throw Error("vulkan backend: " + std::to_string(push_bytes) + " bytes of push constants");
  if (gx == 0 || gy == 0) return;
  Command& c = add(Command::Kind::Dispatch);
  c.pipeline = k.pipeline;
  c.layout = k.layout;
  c.set = set;
  c.gx = gx;
  c.gy = gy;
  c.push_bytes = push_bytes;
  std::memcpy(c.push.data(), push, push_bytes);
  written_ = true;
  ++dispatches_;
}

void VulkanStream::forget_recordings() {
  for (Recording& r : recordings_) r.valid = false;
}

void VulkanStream::record(VkCommandBuffer cb, const std::vector<Command>& log) {
  check(dev_.fn.vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check(dev_.fn.vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
  VkPipeline bound = VK_NULL_HANDLE;
  VkDescriptorSet bound_set = VK_NULL_HANDLE;
  const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  for (const Command& c : log) {
    if (c.barrier) {
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT;
      dev_.fn.vkCmdPipelineBarrier(cb, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
    }
    switch (c.kind) {
      case Command::Kind::Copy: {
        const VkBufferCopy region{c.src_offset, c.dst_offset, c.size};
        dev_.fn.vkCmdCopyBuffer(cb, c.src, c.dst, 1, &region);
        break;
      }
      case Command::Kind::Fill:
        if (c.size) dev_.fn.vkCmdFillBuffer(cb, c.dst, 0, c.size, 0);
        break;
      case Command::Kind::Dispatch:
        if (c.pipeline != bound) {
          dev_.fn.vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c.pipeline);
          bound = c.pipeline;
          bound_set = VK_NULL_HANDLE;  // layouts may differ between pipelines
        }
        if (c.set != bound_set) {
          dev_.fn.vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c.layout, 0, 1, &c.set, 0, nullptr);
          bound_set = c.set;
        }
        if (c.push_bytes)
          dev_.fn.vkCmdPushConstants(cb, c.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, c.push_bytes, c.push.data());
        dev_.fn.vkCmdDispatch(cb, c.gx, c.gy, 1);
        break;
      case Command::Kind::HostRead: {
        VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        dev_.fn.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0,
                                     nullptr, 0, nullptr);
        break;
      }
    }
  }
  check(dev_.fn.vkEndCommandBuffer(cb), "vkEndCommandBuffer");
}

const VulkanStream::Recording& VulkanStream::recording_for_log() {
  uint64_t h = log_.size();
  for (const Command& c : log_) {
    h = mix(h, static_cast<uint64_t>(c.kind) | (uint64_t{c.barrier} << 8));
    h = mix(h, bits(c.src) ^ bits(c.dst) ^ bits(c.pipeline) ^ bits(c.set));
    h = mix(h, c.src_offset ^ (c.dst_offset << 1) ^ (c.size << 2));
    h = mix(h, (uint64_t{c.gx} << 32) | c.gy);
    for (uint32_t i = 0; i < c.push_bytes / 4; ++i) h = mix(h, c.push[i]);
  }
  for (Recording& r : recordings_)
    if (r.valid && r.hash == h && r.log == log_) {
      r.used = submissions_;
      ++replays_;
      return r;
    }
  Recording* slot = &recordings_[0];  // an unused slot, else the least recently used
  for (Recording& r : recordings_) {
    if (!r.valid) {
      slot = &r;
      break;
    }
    if (r.used < slot->used) slot = &r;
  }
  slot->valid = false;
  record(slot->cb, log_);
  slot->hash = h;
  slot->log = log_;
  slot->used = submissions_;
  slot->valid = true;
  return *slot;
}

void VulkanStream::flush() {
  concurrent_ = false;
  if (log_.empty()) return;
  if (!reads_.empty()) add(Command::Kind::HostRead).barrier = false;
  const Recording& rec = recording_for_log();
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &rec.cb;
  log_.clear();
  written_ = false;
  check(dev_.fn.vkQueueSubmit(dev_.queue, 1, &si, fence_), "vkQueueSubmit");
  ++submissions_;
  VkResult r = dev_.fn.vkWaitForFences(dev_.device, 1, &fence_, VK_TRUE, kWaitNs);
  if (r == VK_TIMEOUT)
    throw Error("vulkan backend: \"" + dev_.caps.name + "\" did not finish the submitted work within " +
                std::to_string(kWaitNs / 1000000000ull) + " s");
  check(r, "vkWaitForFences");
  check(dev_.fn.vkResetFences(dev_.device, 1, &fence_), "vkResetFences");
  for (const PendingRead& p : reads_)
    std::memcpy(p.dst, static_cast<const char*>(down_->mapped()) + p.ring_offset, p.bytes);
  reads_.clear();
  up_head_ = down_head_ = 0;
}

void VulkanStream::synchronize() { flush(); }

}  // namespace semline::vk
