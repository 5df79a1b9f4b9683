#include "backend/kernels.h"

#include <string>

#include <semline/error.h>

namespace semline::vk {
namespace {

constexpr uint32_t kSetsPerPool = 256;

}  // namespace

Kernels::Kernels(Device& dev, bool subgroups) : dev_(dev), subgroups_(subgroups), modules_(kShaderCount, VK_NULL_HANDLE) {
  try {
    for (uint32_t n = 1; n <= kMaxBindings; ++n) {
      std::vector<VkDescriptorSetLayoutBinding> b(n);
      for (uint32_t i = 0; i < n; ++i) {
        b[i].binding = i;
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = 1;
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
      }
      VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
      li.bindingCount = n;
      li.pBindings = b.data();
      check(dev.fn.vkCreateDescriptorSetLayout(dev.device, &li, nullptr, &set_layouts_[n]), "vkCreateDescriptorSetLayout");
      VkPushConstantRange pc{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushBytes};
      VkPipelineLayoutCreateInfo pi{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
      pi.setLayoutCount = 1;
      pi.pSetLayouts = &set_layouts_[n];
      pi.pushConstantRangeCount = 1;
      pi.pPushConstantRanges = &pc;
      check(dev.fn.vkCreatePipelineLayout(dev.device, &pi, nullptr, &layouts_[n]), "vkCreatePipelineLayout");
    }
    pools_.push_back(new_pool());
  } catch (...) {
    release();
    throw;
  }
}

Kernels::~Kernels() { release(); }

void Kernels::release() {
  for (auto& [key, k] : kernels_) dev_.fn.vkDestroyPipeline(dev_.device, k->pipeline, nullptr);
  kernels_.clear();
  for (VkShaderModule m : modules_)
    if (m) dev_.fn.vkDestroyShaderModule(dev_.device, m, nullptr);
  modules_.assign(modules_.size(), VK_NULL_HANDLE);
  for (VkDescriptorPool p : pools_) dev_.fn.vkDestroyDescriptorPool(dev_.device, p, nullptr);
  pools_.clear();
  sets_.clear();
  for (auto& l : layouts_)
    if (l) dev_.fn.vkDestroyPipelineLayout(dev_.device, l, nullptr), l = VK_NULL_HANDLE;
  for (auto& l : set_layouts_)
    if (l) dev_.fn.vkDestroyDescriptorSetLayout(dev_.device, l, nullptr), l = VK_NULL_HANDLE;
}

VkDescriptorPool Kernels::new_pool() {
  VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kMaxBindings};
  VkDescriptorPoolCreateInfo ci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  ci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
  ci.maxSets = kSetsPerPool;
  ci.poolSizeCount = 1;
  ci.pPoolSizes = &size;
  VkDescriptorPool pool = VK_NULL_HANDLE;
  check(dev_.fn.vkCreateDescriptorPool(dev_.device, &ci, nullptr, &pool), "vkCreateDescriptorPool");
  return pool;
}

const Kernel& Kernels::get(ShaderId id, std::initializer_list<uint32_t> spec) {
  auto key = std::make_pair(static_cast<int>(id), std::vector<uint32_t>(spec));
  auto it = kernels_.find(key);
  if (it != kernels_.end()) return *it->second;

  const ShaderSource& src = shader_source(id);
  VkShaderModule& module = modules_[static_cast<int>(id)];
  if (!module) {
    const Spirv& code = subgroups_ ? src.subgroup : src.shared;
    VkShaderModuleCreateInfo mi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    mi.codeSize = code.count * sizeof(uint32_t);
    mi.pCode = code.words;
    check(dev_.fn.vkCreateShaderModule(dev_.device, &mi, nullptr, &module), "vkCreateShaderModule");
  }
  std::vector<VkSpecializationMapEntry> entries(key.second.size());
  for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = {i, i * 4u, 4};
  VkSpecializationInfo si{static_cast<uint32_t>(entries.size()), entries.data(), key.second.size() * 4,
                          key.second.data()};
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = &si;
  if (src.n_buffers < 1 || src.n_buffers > kMaxBindings)
    throw Error(std::string("vulkan backend: the ") + src.name + " kernel declares " + std::to_string(src.n_buffers) +
                " buffers; kernels bind 1 to " + std::to_string(kMaxBindings));
  ci.layout = layouts_[src.n_buffers];
  auto k = std::make_unique<Kernel>();
  k->shader = id;
  k->n_buffers = src.n_buffers;
  k->layout = layouts_[src.n_buffers];
  k->set_layout = set_layouts_[src.n_buffers];
  VkResult r = dev_.fn.vkCreateComputePipelines(dev_.device, VK_NULL_HANDLE, 1, &ci, nullptr, &k->pipeline);
  if (r != VK_SUCCESS)
    throw Error(std::string("vulkan backend: building the ") + src.name + " kernel failed on \"" + dev_.caps.name +
                "\": " + result_name(r));
  return *kernels_.emplace(std::move(key), std::move(k)).first->second;
}

VkDescriptorSet Kernels::set_for(const Kernel& k, const GpuBuffer* const* buffers, uint32_t n) {
  if (n != k.n_buffers)
    throw Error("vulkan backend: the " + std::string(shader_source(k.shader).name) + " kernel binds " +
                std::to_string(k.n_buffers) + " buffers, " + std::to_string(n) + " given");
  SetKey key;
  key.n = n;
  for (uint32_t i = 0; i < n; ++i) key.ids[i] = buffers[i]->id();
  auto it = sets_.find(key);
  if (it != sets_.end()) return it->second.set;

  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorSetCount = 1;
  ai.pSetLayouts = &k.set_layout;
  VkDescriptorSet set = VK_NULL_HANDLE;
  ai.descriptorPool = pools_.back();
  VkResult r = dev_.fn.vkAllocateDescriptorSets(dev_.device, &ai, &set);
  if (r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL) {
    pools_.push_back(new_pool());
    ai.descriptorPool = pools_.back();
    r = dev_.fn.vkAllocateDescriptorSets(dev_.device, &ai, &set);
  }
  check(r, "vkAllocateDescriptorSets");
  std::array<VkDescriptorBufferInfo, kMaxBindings> info{};
  std::array<VkWriteDescriptorSet, kMaxBindings> writes{};
  for (uint32_t i = 0; i < n; ++i) {
    info[i] = {buffers[i]->handle(), 0, VK_WHOLE_SIZE};
    writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
    writes[i].dstSet = set;
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &info[i];
  }
  dev_.fn.vkUpdateDescriptorSets(dev_.device, n, writes.data(), 0, nullptr);
  sets_.emplace(key, CachedSet{set, ai.descriptorPool});
  return set;
}

void Kernels::forget(uint64_t buffer_id) {
  for (auto it = sets_.begin(); it != sets_.end();) {
    bool names = false;
    for (uint32_t i = 0; i < it->first.n; ++i) names = names || it->first.ids[i] == buffer_id;
    if (names) {
      dev_.fn.vkFreeDescriptorSets(dev_.device, it->second.pool, 1, &it->second.set);
      it = sets_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace semline::vk
