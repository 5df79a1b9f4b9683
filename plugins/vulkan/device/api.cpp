#include "device/api.h"

#include <dlfcn.h>

#include <mutex>

#include <semline/error.h>

namespace semline::vk {
namespace {

// The loader stays open for the life of the process, like the plugin libraries themselves.
PFN_vkGetInstanceProcAddr open_loader(std::string* why) {
  static std::once_flag once;
  static PFN_vkGetInstanceProcAddr gipa = nullptr;
  static std::string error;
  std::call_once(once, [] {
    void* lib = nullptr;
    for (const char* name : {"libvulkan.so.1", "libvulkan.so"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      const char* e = dlerror();
      if (error.empty()) error = e ? e : name;
    }
    if (!lib) {
      error = "no Vulkan loader (libvulkan.so.1): " + error;
      return;
    }
    gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
    if (!gipa) error = "the Vulkan loader has no vkGetInstanceProcAddr";
  });
  if (!gipa && why) *why = error;
  return gipa;
}

}  // namespace

bool Api::load_global(std::string* why) {
  vkGetInstanceProcAddr = open_loader(why);
  if (!vkGetInstanceProcAddr) return false;
#define SEMLINE_VK_LOAD(name) name = reinterpret_cast<PFN_##name>(vkGetInstanceProcAddr(nullptr, #name));
  SEMLINE_VK_GLOBAL_FNS(SEMLINE_VK_LOAD)
#undef SEMLINE_VK_LOAD
  if (!vkCreateInstance) {
    if (why) *why = "the Vulkan loader has no vkCreateInstance";
    return false;
  }
  return true;
}

void Api::load_instance(VkInstance instance) {
#define SEMLINE_VK_LOAD(name)                                                                     \
  name = reinterpret_cast<PFN_##name>(vkGetInstanceProcAddr(instance, #name));                    \
  if (!name) throw Error("vulkan backend: the Vulkan instance has no entry point " #name);
  SEMLINE_VK_INSTANCE_FNS(SEMLINE_VK_LOAD)
#undef SEMLINE_VK_LOAD
}

void Api::load_device(VkDevice device) {
#define SEMLINE_VK_LOAD(name)                                                                     \
  name = reinterpret_cast<PFN_##name>(vkGetDeviceProcAddr(device, #name));                        \
  if (!name) throw Error("vulkan backend: the Vulkan device has no entry point " #name);
  SEMLINE_VK_DEVICE_FNS(SEMLINE_VK_LOAD)
#undef SEMLINE_VK_LOAD
}

const char* result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    default: return "an unknown VkResult";
  }
}

void check(VkResult r, const char* what) {
  if (r != VK_SUCCESS)
    throw Error(std::string("vulkan backend: ") + what + " failed: " + result_name(r) + " (" +
                std::to_string(static_cast<int>(r)) + ")");
}

}  // namespace semline::vk
