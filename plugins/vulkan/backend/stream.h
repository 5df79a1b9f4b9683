// The vulkan backend's stream: the commands of a step, a command buffer that runs them, a fence.
//
// Stages call in and the stream logs their commands; synchronize() turns the log into a command
// buffer, submits it, waits on the fence, then finishes the copies to host memory. A log that
// matches one submitted before (a decode step is the same commands every token: what changes is
// in the step's uploads, not in the commands) reuses that recording instead of recording again;
// the stream keeps the last few.
//
// Host data bound for the device is copied into a mapped upload ring at once (so the caller's
// memory is free as soon as the call returns) and copied on the device in stream order; device
// data bound for the host lands in a mapped readback ring and reaches the caller's memory at
// synchronize(). Ring offsets restart at every submission, so a repeated step also repeats them.
// When a ring is full the logged work is submitted and waited for, and the log starts afresh.
//
// Every command that follows a write is preceded by a memory barrier, so commands see each
// other's results in order; dispatches inside begin_concurrent()/end_concurrent() may overlap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <semline/backend.h>

#include "backend/kernels.h"
#include "device/memory.h"

namespace semline::vk {

class VulkanStream final : public Stream {
 public:
  VulkanStream(Device& dev, size_t staging_bytes);
  ~VulkanStream() override;

  void synchronize() override;

  void upload(const void* src, const GpuBuffer& dst, size_t dst_offset, size_t bytes);
  void download(const GpuBuffer& src, size_t src_offset, void* dst, size_t bytes);
  void fill_zero(const GpuBuffer& dst);
  // push: up to kPushBytes of push constants; groups: workgroups along x, y.
  void dispatch(const Kernel& k, VkDescriptorSet set, const void* push, uint32_t push_bytes, uint32_t gx,
                uint32_t gy = 1);

  void begin_concurrent();
  void end_concurrent();

  // Recordings may name descriptor sets that are being freed: record afresh from now on.
  void forget_recordings();

  bool idle() const { return log_.empty(); }
  uint64_t submissions() const { return submissions_; }  // for tests and logs
  uint64_t replays() const { return replays_; }          // submissions that reused a recording
  uint64_t dispatches() const { return dispatches_; }

 private:
  struct Command {
    enum class Kind : uint32_t { Copy, Fill, Dispatch, HostRead } kind = Kind::Copy;
    bool barrier = false;  // a memory barrier goes first
    VkBuffer src = VK_NULL_HANDLE, dst = VK_NULL_HANDLE;
    VkDeviceSize src_offset = 0, dst_offset = 0, size = 0;
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkDescriptorSet set = VK_NULL_HANDLE;
    uint32_t gx = 0, gy = 0, push_bytes = 0;
    std::array<uint32_t, kPushBytes / 4> push{};
    bool operator==(const Command&) const = default;
  };
  struct Recording {
    uint64_t hash = 0;
    std::vector<Command> log;
    VkCommandBuffer cb = VK_NULL_HANDLE;
    uint64_t used = 0;  // submission number of the last use
    bool valid = false;
  };

  Command& add(Command::Kind kind);  // appends a command with the barrier it needs
  const Recording& recording_for_log();
  void record(VkCommandBuffer cb, const std::vector<Command>& log);
  void flush();

  struct PendingRead {
    size_t ring_offset;
    void* dst;
    size_t bytes;
  };
  Device& dev_;
  size_t ring_bytes_;
  std::unique_ptr<GpuBuffer> up_, down_;
  size_t up_head_ = 0, down_head_ = 0;
  std::vector<PendingRead> reads_;
  std::vector<Command> log_;
  std::vector<Recording> recordings_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  bool written_ = false;  // a logged command wrote memory since the last barrier
  bool concurrent_ = false;
  uint64_t submissions_ = 0, replays_ = 0, dispatches_ = 0;
};

}  // namespace semline::vk
