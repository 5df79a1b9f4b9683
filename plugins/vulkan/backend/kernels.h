// Compute pipelines and descriptor sets of one device.
//
// Every kernel binds whole buffers (offsets travel in push constants), so a descriptor set
// depends only on the buffers it names: sets are made once per combination and cached, and a
// step after the first allocates none. Pipelines are built when a stage is bound, not per step.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <vector>

#include "device/memory.h"
#include "shaders/spirv.h"

namespace semline::vk {

inline constexpr uint32_t kMaxBindings = 6;
inline constexpr uint32_t kPushBytes = 128;  // the smallest maxPushConstantsSize Vulkan allows

struct Kernel {
  ShaderId shader;
  uint32_t n_buffers = 0;
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
};

class Kernels {
 public:
  // subgroups: use the subgroup-arithmetic variants (when the device has them).
  Kernels(Device& dev, bool subgroups);
  ~Kernels();
  Kernels(const Kernels&) = delete;
  Kernels& operator=(const Kernels&) = delete;

  bool subgroups() const { return subgroups_; }

  // The pipeline of a shader specialised with these constants (constant_id 0, 1, ...).
  const Kernel& get(ShaderId id, std::initializer_list<uint32_t> spec);

  // A descriptor set binding these buffers, whole, to bindings 0..n-1 of the kernel's layout.
  VkDescriptorSet set_for(const Kernel& k, const GpuBuffer* const* buffers, uint32_t n);

  // Drops the cached sets that name this buffer (it is going away).
  void forget(uint64_t buffer_id);

  size_t cached_sets() const { return sets_.size(); }

 private:
  struct SetKey {
    uint32_t n = 0;
    std::array<uint64_t, kMaxBindings> ids{};
    auto operator<=>(const SetKey&) const = default;
  };
  struct CachedSet {
    VkDescriptorSet set;
    VkDescriptorPool pool;
  };
  VkDescriptorPool new_pool();
  void release();

  Device& dev_;
  bool subgroups_;
  std::array<VkDescriptorSetLayout, kMaxBindings + 1> set_layouts_{};
  std::array<VkPipelineLayout, kMaxBindings + 1> layouts_{};
  std::map<std::pair<int, std::vector<uint32_t>>, std::unique_ptr<Kernel>> kernels_;
  std::vector<VkShaderModule> modules_;  // by ShaderId, created on first use
  std::vector<VkDescriptorPool> pools_;
  std::map<SetKey, CachedSet> sets_;
};

}  // namespace semline::vk
