// The Vulkan entry points the plugin uses, loaded at run time from the system's Vulkan loader.
//
// The plugin does not link libvulkan: a machine without a loader still loads the plugin, and the
// backend's probe says why it cannot run instead of the whole plugin being refused.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace semline::vk {

#define SEMLINE_VK_GLOBAL_FNS(X)            \
  X(vkCreateInstance)                       \
  X(vkEnumerateInstanceVersion)

#define SEMLINE_VK_INSTANCE_FNS(X)          \
  X(vkDestroyInstance)                      \
  X(vkEnumeratePhysicalDevices)             \
  X(vkGetPhysicalDeviceProperties)          \
  X(vkGetPhysicalDeviceProperties2)         \
  X(vkGetPhysicalDeviceMemoryProperties)    \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkCreateDevice)                         \
  X(vkGetDeviceProcAddr)

#define SEMLINE_VK_DEVICE_FNS(X)            \
  X(vkDestroyDevice)                        \
  X(vkGetDeviceQueue)                       \
  X(vkDeviceWaitIdle)                       \
  X(vkCreateBuffer)                         \
  X(vkDestroyBuffer)                        \
  X(vkGetBufferMemoryRequirements)          \
  X(vkAllocateMemory)                       \
  X(vkFreeMemory)                           \
  X(vkBindBufferMemory)                     \
  X(vkMapMemory)                            \
  X(vkUnmapMemory)                          \
  X(vkCreateCommandPool)                    \
  X(vkDestroyCommandPool)                   \
  X(vkAllocateCommandBuffers)               \
  X(vkBeginCommandBuffer)                   \
  X(vkEndCommandBuffer)                     \
  X(vkResetCommandBuffer)                   \
  X(vkCmdCopyBuffer)                        \
  X(vkCmdFillBuffer)                        \
  X(vkCmdPipelineBarrier)                   \
  X(vkCmdBindPipeline)                      \
  X(vkCmdBindDescriptorSets)                \
  X(vkCmdPushConstants)                     \
  X(vkCmdDispatch)                          \
  X(vkQueueSubmit)                          \
  X(vkCreateFence)                          \
  X(vkDestroyFence)                         \
  X(vkWaitForFences)                        \
  X(vkResetFences)                          \
  X(vkCreateShaderModule)                   \
  X(vkDestroyShaderModule)                  \
  X(vkCreateDescriptorSetLayout)            \
  X(vkDestroyDescriptorSetLayout)           \
  X(vkCreatePipelineLayout)                 \
  X(vkDestroyPipelineLayout)                \
  X(vkCreateComputePipelines)               \
  X(vkDestroyPipeline)                      \
  X(vkCreateDescriptorPool)                 \
  X(vkDestroyDescriptorPool)                \
  X(vkAllocateDescriptorSets)               \
  X(vkFreeDescriptorSets)                   \
  X(vkUpdateDescriptorSets)

#define SEMLINE_VK_DECLARE(name) PFN_##name name = nullptr;

// Every entry point, filled in three stages: global (from the loader), instance, device.
struct Api {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
  SEMLINE_VK_GLOBAL_FNS(SEMLINE_VK_DECLARE)
  SEMLINE_VK_INSTANCE_FNS(SEMLINE_VK_DECLARE)
  SEMLINE_VK_DEVICE_FNS(SEMLINE_VK_DECLARE)

  // Opens the loader (once per process) and fills the global entry points; on failure returns
  // false with the reason in *why.
  bool load_global(std::string* why);
  void load_instance(VkInstance instance);  // throws naming a missing entry point
  void load_device(VkDevice device);        // throws naming a missing entry point
};

#undef SEMLINE_VK_DECLARE

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" and the like.
const char* result_name(VkResult r);

// Throws semline::Error "vulkan backend: <what> failed: <result>" unless r is VK_SUCCESS.
void check(VkResult r, const char* what);

}  // namespace semline::vk
