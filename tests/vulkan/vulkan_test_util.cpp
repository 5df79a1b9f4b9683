#include "vulkan/vulkan_test_util.h"

#include <stdexcept>

#include <semline/codec.h>

#include "register.h"

namespace semline::vktest {

std::string no_device_reason() {
  static const std::string why = [] {
    std::string s;
    for (const std::string& r : vk::probe_vulkan()) s += (s.empty() ? "" : "; ") + r;
    return s;
  }();
  return why;
}

std::unique_ptr<vk::VulkanBackend> make_backend(bool subgroups, size_t staging_bytes) {
  vk::BackendOptions o;
  o.subgroups = subgroups;
  o.staging_bytes = staging_bytes;
  return std::make_unique<vk::VulkanBackend>(o);
}

std::vector<bool> reduction_modes() {
  static const std::vector<bool> modes = [] {
    vk::BackendOptions o;
    vk::Device dev(o.device);
    return dev.caps.subgroup_arithmetic ? std::vector<bool>{true, false} : std::vector<bool>{false};
  }();
  return modes;
}

const RecordingRegistry& vulkan_entries() {
  static const RecordingRegistry r = [] {
    RecordingRegistry reg;
    vk::register_vulkan(reg);
    return reg;
  }();
  return r;
}

DeviceRows::DeviceRows(Backend& be, const std::vector<float>& values, int64_t width) {
  const int64_t rows = static_cast<int64_t>(values.size()) / width;
  buf = be.alloc(values.size() * sizeof(float));
  t = make_tensor(DType::F32, {width, rows}, buf->host(), buf.get());
  be.copy_to_device(values.data(), t, values.size() * sizeof(float), be.stream());
}

std::vector<float> read_back(Backend& be, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.elements()));
  if (t.dtype == DType::F32) {
    be.copy_to_host(t, v.data(), v.size() * sizeof(float), be.stream());
    be.stream().synchronize();
    return v;
  }
  if (t.dtype != DType::F16) throw std::invalid_argument("read_back: F32 or F16 tensors only");
  std::vector<uint16_t> h(v.size());
  be.copy_to_host(t, h.data(), h.size() * sizeof(uint16_t), be.stream());
  be.stream().synchronize();
  for (size_t i = 0; i < h.size(); ++i) v[i] = f16_to_f32(h[i]);
  return v;
}

}  // namespace semline::vktest
