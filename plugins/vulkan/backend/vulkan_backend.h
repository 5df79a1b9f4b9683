// The vulkan backend: device-local buffers, weights copied once to the device at load, a stream
// that records command buffers, the shared scratch area and the per-step uploads its stages use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <semline/backend.h>
#include <semline/stage.h>

#include "backend/kernels.h"
#include "backend/stream.h"
#include "device/device.h"
#include "device/memory.h"
#include "stations/stations.h"

namespace semline::stations {
class Kernels;
class SsmKernels;
}

namespace semline::vk {

class VulkanBackend;
class Workspace;
class StepData;

// Device-local memory: no host address; the host reaches it through copies on the stream.
class VulkanBuffer final : public Buffer {
 public:
  VulkanBuffer(VulkanBackend& be, size_t bytes);  // zero-filled, in stream order
  ~VulkanBuffer() override;
  Backend& backend() override;
  size_t size() const override { return gpu_.size(); }
  void* host() override { return nullptr; }
  const GpuBuffer& gpu() const { return gpu_; }
  const VulkanBackend& owner() const { return be_; }

 private:
  VulkanBackend& be_;
  GpuBuffer gpu_;
};

struct BackendOptions {
  std::string device;          // see Device: "" for the first discrete GPU, else any device
  bool subgroups = true;       // subgroup reductions where the device has them
  size_t staging_bytes = 16u << 20;  // each of the upload and readback rings
};

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(const BackendOptions& options, LogFn log = {});
  ~VulkanBackend() override;

  BackendInfo info() const override;
  std::unique_ptr<Buffer> alloc(size_t bytes) override;
  Tensor upload_weight(const Tensor& host_view) override;
  Stream& stream() override { return *stream_; }
  void copy_to_device(const void* host, const Tensor& dst, size_t bytes, Stream& s) override;
  void copy_to_host(const Tensor& src, void* host, size_t bytes, Stream& s) override;
  // Host work runs on the calling thread: the device does the heavy lifting.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override;
  int host_threads() const override { return 1; }

  // --- for the stages of this plugin

  Device& device() { return *dev_; }
  Kernels& kernels() { return *kernels_; }
  VulkanStream& vstream() { return *stream_; }
  VulkanStream& stream_of(Stream& s);  // throws unless s is this backend's stream
  // The buffer of a tensor on this backend; throws naming "<who>: <what>" otherwise (the message
  // is built only then: stages call this every step).
  const VulkanBuffer& buffer_of(const Tensor& t, std::string_view what, std::string_view who = {}) const;
  // A device copy of host data a stage derived itself (a scale converted to float, say). Not
  // shared like weights: every call copies.
  Tensor upload_private(const void* data, const Tensor& view);
  Workspace& workspace() { return *workspace_; }
  // What the stations written once call (stations/kernels.h).
  stations::Kernels& station_kernels() { return *station_kernels_; }
  stations::SsmKernels& ssm_kernels() { return *ssm_kernels_; }
  StepData& step_data() { return *step_; }

  // Records a dispatch of `groups` workgroups (spread over x and y when x cannot hold them).
  void dispatch(const Kernel& k, std::initializer_list<const GpuBuffer*> buffers, const void* push,
                uint32_t push_bytes, uint64_t groups);
  void dispatch_grid(const Kernel& k, std::initializer_list<const GpuBuffer*> buffers, const void* push,
                     uint32_t push_bytes, uint32_t gx, uint32_t gy);

  // Called by a buffer about to be destroyed: recorded work that may use it is finished first.
  void retire(const GpuBuffer& b) noexcept;

  size_t weight_bytes() const { return weight_bytes_; }
  // Throws naming `what` when a buffer of `bytes` is more than one descriptor may bind here.
  void check_binding_size(size_t bytes, const std::string& what) const;

 private:
  Tensor place(const void* data, const Tensor& view);

  LogFn log_;
  std::unique_ptr<Device> dev_;
  std::unique_ptr<Kernels> kernels_;
  std::unique_ptr<VulkanStream> stream_;
  std::vector<std::unique_ptr<VulkanBuffer>> chunks_;  // weights, packed
  size_t chunk_used_ = 0, weight_bytes_ = 0;
  // Host view (address, bytes, dtype) -> its device copy and a digest of the bytes copied: a tied
  // weight bound by two stations is copied once, and a host address reused for other bytes (a
  // freed and reallocated buffer) is noticed.
  std::map<std::tuple<const void*, size_t, uint32_t>, std::pair<Tensor, uint64_t>> weights_;
  std::unique_ptr<Workspace> workspace_;
  std::unique_ptr<StepData> step_;
  std::unique_ptr<stations::Kernels> station_kernels_;
  std::unique_ptr<stations::SsmKernels> ssm_kernels_;
};

// The stage of a context's backend; throws naming the station when it is another backend.
inline VulkanBackend& vulkan_backend_of(const StageContext& ctx) {
  return stations::backend_as<VulkanBackend>(ctx, "vulkan");
}

}  // namespace semline::vk
