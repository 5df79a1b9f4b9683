#include "device/device.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include <semline/error.h>

namespace semline::vk {
namespace {

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

std::string version_string(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
         std::to_string(VK_API_VERSION_PATCH(v));
}

// An instance for Vulkan 1.1 (subgroup queries and SPIR-V 1.3 shaders need it).
VkInstance create_instance(Api& fn, std::string* why) {
  if (!fn.load_global(why)) return VK_NULL_HANDLE;
  uint32_t version = VK_API_VERSION_1_0;
  if (fn.vkEnumerateInstanceVersion) fn.vkEnumerateInstanceVersion(&version);
  if (version < VK_API_VERSION_1_1) {
    *why = "the Vulkan loader implements " + version_string(version) + "; the backend needs Vulkan 1.1";
    return VK_NULL_HANDLE;
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "semline";
  app.pEngineName = "semline";
  app.apiVersion = VK_API_VERSION_1_1;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  VkInstance instance = VK_NULL_HANDLE;
  VkResult r = fn.vkCreateInstance(&ci, nullptr, &instance);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
    *why = "no Vulkan device: the loader found no driver (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER)";
    return VK_NULL_HANDLE;
  }
  if (r != VK_SUCCESS) {
    *why = std::string("vkCreateInstance failed: ") + result_name(r);
    return VK_NULL_HANDLE;
  }
  try {
    fn.load_instance(instance);
  } catch (const std::exception& e) {
    if (fn.vkDestroyInstance) fn.vkDestroyInstance(instance, nullptr);
    *why = e.what();
    return VK_NULL_HANDLE;
  }
  return instance;
}

std::vector<VkPhysicalDevice> physical_devices(const Api& fn, VkInstance instance) {
  uint32_t n = 0;
  fn.vkEnumeratePhysicalDevices(instance, &n, nullptr);
  std::vector<VkPhysicalDevice> v(n);
  if (n) fn.vkEnumeratePhysicalDevices(instance, &n, v.data());
  v.resize(n);
  return v;
}

// The first queue family that runs compute work, or -1.
int compute_family(const Api& fn, VkPhysicalDevice pd) {
  uint32_t n = 0;
  fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> q(n);
  fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q.data());
  for (uint32_t i = 0; i < n; ++i)
    if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].queueCount > 0) return static_cast<int>(i);
  return -1;
}

DeviceListing describe(const Api& fn, VkPhysicalDevice pd, uint32_t index) {
  VkPhysicalDeviceProperties p{};
  fn.vkGetPhysicalDeviceProperties(pd, &p);
  DeviceListing d;
  d.index = index;
  d.name = p.deviceName;
  d.type = type_name(p.deviceType);
  if (p.apiVersion < VK_API_VERSION_1_1)
    d.unusable = "implements Vulkan " + version_string(p.apiVersion) + ", the backend needs 1.1";
  else if (compute_family(fn, pd) < 0)
    d.unusable = "has no compute queue";
  return d;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string listing_text(const std::vector<DeviceListing>& ds) {
  if (ds.empty()) return "the Vulkan loader lists no devices";
  std::string s = "devices:";
  for (const DeviceListing& d : ds)
    s += " " + std::to_string(d.index) + " = \"" + d.name + "\" (" + d.type +
         (d.unusable.empty() ? "" : ", " + d.unusable) + ");";
  s.pop_back();
  return s;
}

// The index among `ds` that `choice` names; throws with the listing when none does.
uint32_t choose(const std::string& choice, const std::vector<DeviceListing>& ds) {
  auto usable = [&](uint32_t i) { return ds[i].unusable.empty(); };
  if (choice.empty()) {
    for (uint32_t i = 0; i < ds.size(); ++i)
      if (usable(i) && ds[i].type == std::string("discrete GPU")) return i;
    for (uint32_t i = 0; i < ds.size(); ++i)
      if (usable(i)) return i;
    throw Error("vulkan backend: no usable Vulkan device; " + listing_text(ds));
  }
  const bool numeric = std::all_of(choice.begin(), choice.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) {
    const unsigned long i = choice.size() <= 9 ? std::stoul(choice) : ds.size();
    if (i >= ds.size())
      throw Error("vulkan backend: device = \"" + choice + "\" is out of range; " + listing_text(ds));
    if (!usable(static_cast<uint32_t>(i)))
      throw Error("vulkan backend: device " + choice + " (" + ds[i].name + ") " + ds[i].unusable);
    return static_cast<uint32_t>(i);
  }
  for (uint32_t i = 0; i < ds.size(); ++i)
    if (lower(ds[i].name).find(lower(choice)) != std::string::npos) {
      if (!usable(i)) throw Error("vulkan backend: device \"" + ds[i].name + "\" " + ds[i].unusable);
      return i;
    }
  throw Error("vulkan backend: no device name contains \"" + choice + "\"; " + listing_text(ds));
}

DeviceCaps read_caps(const Api& fn, VkPhysicalDevice pd, const VkPhysicalDeviceMemoryProperties& mem) {
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  sub.pNext = &m3;
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  p2.pNext = &sub;
  fn.vkGetPhysicalDeviceProperties2(pd, &p2);
  const VkPhysicalDeviceProperties& p = p2.properties;
  DeviceCaps c;
  c.name = p.deviceName;
  c.type = type_name(p.deviceType);
  c.api_version = p.apiVersion;
  c.max_storage_range = p.limits.maxStorageBufferRange;
  c.max_allocation = m3.maxMemoryAllocationSize;
  c.max_shared_bytes = p.limits.maxComputeSharedMemorySize;
  for (int i = 0; i < 3; ++i) c.max_groups[i] = p.limits.maxComputeWorkGroupCount[i];
  const VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
  c.subgroup_arithmetic = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (sub.supportedOperations & need) == need && sub.subgroupSize > 0;
  c.subgroup_size = sub.subgroupSize;
  for (uint32_t h = 0; h < mem.memoryHeapCount; ++h)
    if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      c.device_local_bytes = std::max<size_t>(c.device_local_bytes, mem.memoryHeaps[h].size);
  return c;
}

}  // namespace

Device::Device(const std::string& choice, const LogFn& log) {
  std::string why;
  instance = create_instance(fn, &why);
  if (!instance) throw Error("vulkan backend: " + why);
  try {
    std::vector<VkPhysicalDevice> pds = physical_devices(fn, instance);
    std::vector<DeviceListing> ds;
    for (uint32_t i = 0; i < pds.size(); ++i) ds.push_back(describe(fn, pds[i], i));
    const uint32_t pick = choose(choice, ds);
    physical = pds[pick];
    queue_family = static_cast<uint32_t>(compute_family(fn, physical));
    fn.vkGetPhysicalDeviceMemoryProperties(physical, &mem_);
    caps = read_caps(fn, physical, mem_);

    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qi.queueFamilyIndex = queue_family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &priority;
    VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    check(fn.vkCreateDevice(physical, &di, nullptr, &device), "vkCreateDevice");
    fn.load_device(device);
    fn.vkGetDeviceQueue(device, queue_family, 0, &queue);
    if (log)
      log(LogLevel::Debug, "vulkan backend: device " + std::to_string(pick) + " \"" + caps.name + "\" (" + caps.type +
                               ", Vulkan " + version_string(caps.api_version) + ", subgroup " +
                               std::to_string(caps.subgroup_size) +
                               (caps.subgroup_arithmetic ? " with arithmetic" : " without arithmetic") + ")");
  } catch (...) {
    if (device) fn.vkDestroyDevice(device, nullptr);
    fn.vkDestroyInstance(instance, nullptr);
    throw;
  }
}

Device::~Device() {
  if (device) {
    fn.vkDeviceWaitIdle(device);
    fn.vkDestroyDevice(device, nullptr);
  }
  if (instance) fn.vkDestroyInstance(instance, nullptr);
}

uint32_t Device::memory_type(uint32_t allowed, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const {
  int fallback = -1;
  for (uint32_t i = 0; i < mem_.memoryTypeCount; ++i) {
    if (!(allowed & (1u << i)) || !memory_is(i, required)) continue;
    if (memory_is(i, required | preferred)) return i;
    if (fallback < 0) fallback = static_cast<int>(i);
  }
  if (fallback < 0)
    throw Error("vulkan backend: device \"" + caps.name + "\" has no memory type with property flags " +
                std::to_string(required) + " for this buffer");
  return static_cast<uint32_t>(fallback);
}

std::vector<DeviceListing> list_devices(std::string* why) {
  Api fn;
  VkInstance instance = create_instance(fn, why);
  if (!instance) return {};
  std::vector<DeviceListing> ds;
  std::vector<VkPhysicalDevice> pds = physical_devices(fn, instance);
  for (uint32_t i = 0; i < pds.size(); ++i) ds.push_back(describe(fn, pds[i], i));
  fn.vkDestroyInstance(instance, nullptr);
  return ds;
}

}  // namespace semline::vk
