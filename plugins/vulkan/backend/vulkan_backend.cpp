#include "backend/vulkan_backend.h"

#include <algorithm>
#include <cstring>

#include <semline/error.h>

#include "backend/step_data.h"
#include "backend/workspace.h"
#include "ops/ssm.h"
#include "ops/station_kernels.h"

namespace semline::vk {
namespace {

constexpr size_t kWeightChunk = 64u << 20;
constexpr size_t kWeightAlign = 256;

std::string version_string(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
         std::to_string(VK_API_VERSION_PATCH(v));
}

// Bytes from element 0 to the end of the last element of a view.
size_t tensor_extent(const Tensor& t) {
  int64_t bytes = t.row_bytes();
  for (int d = 1; d < kMaxDims; ++d)
    if (t.ne[d] > 1) bytes += (t.ne[d] - 1) * t.nb[d];
  return static_cast<size_t>(bytes);
}

// A 64-bit digest of a weight's bytes, to tell a reused host address from the same weight.
uint64_t digest(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ull ^ bytes;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

VulkanBuffer::VulkanBuffer(VulkanBackend& be, size_t bytes) : be_(be), gpu_(be.device(), bytes, MemoryKind::Device) {
  be.vstream().fill_zero(gpu_);
}

VulkanBuffer::~VulkanBuffer() { be_.retire(gpu_); }

Backend& VulkanBuffer::backend() { return be_; }

VulkanBackend::VulkanBackend(const BackendOptions& o, LogFn log) : log_(std::move(log)) {
  dev_ = std::make_unique<Device>(o.device, log_);
  const bool subgroups = o.subgroups && dev_->caps.subgroup_arithmetic;
  kernels_ = std::make_unique<Kernels>(*dev_, subgroups);
  stream_ = std::make_unique<VulkanStream>(*dev_, o.staging_bytes);
  workspace_ = std::make_unique<Workspace>(*this);
  step_ = std::make_unique<StepData>(*this);
  station_kernels_ = make_station_kernels(*this);
  ssm_kernels_ = make_ssm_kernels(*this);
  if (log_)
    log_(LogLevel::Debug, std::string("vulkan backend: ") + (subgroups ? "subgroup" : "shared-memory") +
                              " reductions, " + std::to_string(o.staging_bytes >> 20) + " MiB staging rings");
}

VulkanBackend::~VulkanBackend() {
  try {
    stream_->synchronize();
  } catch (const std::exception& e) {
    if (log_) log_(LogLevel::Warn, std::string("vulkan backend: unfinished work at shutdown: ") + e.what());
  }
  dev_->fn.vkDeviceWaitIdle(dev_->device);  // nothing may be in flight when its objects go
  step_.reset();
  workspace_.reset();
  weights_.clear();
  chunks_.clear();
  stream_.reset();
  kernels_.reset();
  dev_.reset();
}

BackendInfo VulkanBackend::info() const {
  BackendInfo i;
  i.name = "vulkan";
  i.device = dev_->caps.name + " (" + dev_->caps.type + ", Vulkan " + version_string(dev_->caps.api_version) + ", " +
             (kernels_->subgroups() ? "subgroups of " + std::to_string(dev_->caps.subgroup_size)
                                    : std::string("shared-memory reductions")) +
             ")";
  i.memory_bytes = dev_->caps.device_local_bytes;
  return i;
}

void VulkanBackend::check_binding_size(size_t bytes, const std::string& what) const {
  if (bytes > dev_->caps.max_storage_range)
    throw Error("vulkan backend: " + what + " of " + std::to_string(bytes) + " bytes is larger than \"" +
                dev_->caps.name + "\" binds in one storage buffer (maxStorageBufferRange " +
                std::to_string(dev_->caps.max_storage_range) + " bytes)");
}

std::unique_ptr<Buffer> VulkanBackend::alloc(size_t bytes) {
  check_binding_size(bytes, "a buffer");
  return std::make_unique<VulkanBuffer>(*this, bytes);
}

Tensor VulkanBackend::place(const void* data, const Tensor& view) {
  const size_t bytes = static_cast<size_t>(view.row_bytes() * view.rows());
  check_binding_size(bytes, "weight " + tensor_shape_string(view));
  if (chunks_.empty() || chunk_used_ + bytes > chunks_.back()->size()) {
    const size_t chunk = std::max(bytes, std::min(kWeightChunk, static_cast<size_t>(dev_->caps.max_storage_range)));
    chunks_.push_back(std::make_unique<VulkanBuffer>(*this, chunk));
    chunk_used_ = 0;
  }
  VulkanBuffer& into = *chunks_.back();
  const size_t offset = chunk_used_;
  stream_->upload(data, into.gpu(), offset, bytes);
  chunk_used_ = (offset + bytes + kWeightAlign - 1) / kWeightAlign * kWeightAlign;
  weight_bytes_ += bytes;
  Tensor t = view;
  t.buffer = &into;
  t.host = nullptr;
  t.offset = offset;
  return t;
}

Tensor VulkanBackend::upload_weight(const Tensor& host_view) {
  if (!host_view.host)
    throw Error("vulkan backend: weight " + tensor_shape_string(host_view) + " has no host address to copy from");
  if (!host_view.contiguous())
    throw Error("vulkan backend: weight " + tensor_shape_string(host_view) + " is not contiguous");
  const size_t bytes = static_cast<size_t>(host_view.row_bytes() * host_view.rows());
  const auto key = std::make_tuple(static_cast<const void*>(host_view.host), bytes,
                                   static_cast<uint32_t>(host_view.dtype));
  const uint64_t d = digest(host_view.host, bytes);
  auto it = weights_.find(key);
  if (it != weights_.end() && it->second.second == d) {
    Tensor t = it->second.first;  // the same bytes, possibly seen with another shape
    std::copy(host_view.ne, host_view.ne + kMaxDims, t.ne);
    std::copy(host_view.nb, host_view.nb + kMaxDims, t.nb);
    t.ndim = host_view.ndim;
    return t;
  }
  Tensor t = place(host_view.host, host_view);
  weights_[key] = {t, d};
  return t;
}

Tensor VulkanBackend::upload_private(const void* data, const Tensor& view) { return place(data, view); }

VulkanStream& VulkanBackend::stream_of(Stream& s) {
  if (&s != stream_.get()) throw Error("vulkan backend: work was enqueued on a stream of another backend");
  return *stream_;
}

const VulkanBuffer& VulkanBackend::buffer_of(const Tensor& t, std::string_view what, std::string_view who) const {
  const auto* b = dynamic_cast<const VulkanBuffer*>(t.buffer);
  auto name = [&] { return (who.empty() ? "" : std::string(who) + ": ") + std::string(what); };
  if (!b || &b->owner() != this)
    throw Error(name() + " " + tensor_shape_string(t) + " is not in this vulkan backend's memory" +
                (t.buffer ? "" : " (it has no buffer)"));
  if (t.offset % 4 != 0)
    throw Error(name() + " " + tensor_shape_string(t) + " starts at byte offset " + std::to_string(t.offset) +
                ", not a multiple of 4");
  return *b;
}

void VulkanBackend::copy_to_device(const void* host, const Tensor& dst, size_t bytes, Stream& s) {
  VulkanStream& vs = stream_of(s);
  const auto* b = dynamic_cast<const VulkanBuffer*>(dst.buffer);
  if (!b || &b->owner() != this)
    throw Error("vulkan backend: copy into " + tensor_shape_string(dst) + ", which is not in this backend's memory");
  if (bytes > tensor_extent(dst) || dst.offset + bytes > b->size())
    throw Error("vulkan backend: copy of " + std::to_string(bytes) + " bytes into " + tensor_shape_string(dst) +
                ", which spans " + std::to_string(tensor_extent(dst)) + " bytes");
  vs.upload(host, b->gpu(), dst.offset, bytes);
}

void VulkanBackend::copy_to_host(const Tensor& src, void* host, size_t bytes, Stream& s) {
  VulkanStream& vs = stream_of(s);
  const auto* b = dynamic_cast<const VulkanBuffer*>(src.buffer);
  if (!b || &b->owner() != this)
    throw Error("vulkan backend: copy from " + tensor_shape_string(src) + ", which is not in this backend's memory");
  if (bytes > tensor_extent(src) || src.offset + bytes > b->size())
    throw Error("vulkan backend: copy of " + std::to_string(bytes) + " bytes from " + tensor_shape_string(src) +
                ", which spans " + std::to_string(tensor_extent(src)) + " bytes");
  vs.download(b->gpu(), src.offset, host, bytes);
}

void VulkanBackend::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n > 0) fn(0, n);
}

void VulkanBackend::dispatch(const Kernel& k, std::initializer_list<const GpuBuffer*> buffers, const void* push,
                             uint32_t push_bytes, uint64_t groups) {
  if (groups == 0) return;
  const uint64_t gx = std::min<uint64_t>(groups, dev_->caps.max_groups[0]);
  const uint64_t gy = (groups + gx - 1) / gx;
  if (gy > dev_->caps.max_groups[1])
    throw Error("vulkan backend: " + std::to_string(groups) + " workgroups are more than \"" + dev_->caps.name +
                "\" dispatches at once");
  dispatch_grid(k, buffers, push, push_bytes, static_cast<uint32_t>(gx), static_cast<uint32_t>(gy));
}

void VulkanBackend::dispatch_grid(const Kernel& k, std::initializer_list<const GpuBuffer*> buffers, const void* push,
                                  uint32_t push_bytes, uint32_t gx, uint32_t gy) {
  if (gx > dev_->caps.max_groups[0] || gy > dev_->caps.max_groups[1])
    throw Error("vulkan backend: a grid of " + std::to_string(gx) + " x " + std::to_string(gy) + " workgroups of the " +
                shader_source(k.shader).name + " kernel is more than \"" + dev_->caps.name + "\" dispatches at once (" +
                std::to_string(dev_->caps.max_groups[0]) + " x " + std::to_string(dev_->caps.max_groups[1]) +
                "; lower runtime.max_batch_tokens)");
  VkDescriptorSet set = kernels_->set_for(k, buffers.begin(), static_cast<uint32_t>(buffers.size()));
  stream_->dispatch(k, set, push, push_bytes, gx, gy);
}

void VulkanBackend::retire(const GpuBuffer& b) noexcept {
  try {
    if (stream_ && !stream_->idle()) stream_->synchronize();
  } catch (const std::exception& e) {
    if (log_) log_(LogLevel::Warn, std::string("vulkan backend: finishing work before freeing a buffer: ") + e.what());
  }
  if (stream_) stream_->forget_recordings();
  if (kernels_) kernels_->forget(b.id());
}

}  // namespace semline::vk
