#include "vulkan/vulkan_test_util.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <semline/codec.h>

#include "register.h"

namespace semline::vktest {

uint32_t seed() {
  static const uint32_t s = [] {
    const char* env = std::getenv("SEMLINE_TEST_SEED");
    const uint32_t v = env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("vulkan tests: seed %u (set SEMLINE_TEST_SEED=%u to repeat)\n", v, v);
    return v;
  }();
  return s;
}

std::mt19937& rng() {
  static std::mt19937 r(seed());
  return r;
}

std::vector<float> random_floats(int64_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng());
  return v;
}

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

Weight make_weight(DType dtype, int64_t n_in, int64_t n_out, float scale) {
  Weight w;
  w.dtype = dtype;
  w.n_in = n_in;
  w.n_out = n_out;
  const size_t row = static_cast<size_t>(dtype_row_bytes(dtype, n_in));
  w.bytes.assign((row * static_cast<size_t>(n_out) + 7) / 8 + 1, 0);
  w.value.resize(static_cast<size_t>(n_in * n_out));
  std::vector<float> back(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    const std::vector<float> f = random_floats(n_in, scale);
    char* dst = reinterpret_cast<char*>(w.bytes.data()) + r * row;
    quantize_row(dtype, f.data(), dst, n_in);
    dequantize_row(dtype, dst, back.data(), n_in);
    for (int64_t i = 0; i < n_in; ++i) w.value[r * n_in + i] = back[i];
  }
  return w;
}

const Weight& FakeModel::add(const std::string& name, DType dtype, int64_t n_in, int64_t n_out, float scale) {
  auto& slot = weights_[name];
  slot.first = make_weight(dtype, n_in, n_out, scale);
  slot.second = n_out == 1 ? make_tensor(dtype, {n_in}, slot.first.bytes.data())
                           : make_tensor(dtype, {n_in, n_out}, slot.first.bytes.data());
  return slot.first;
}

const Weight& FakeModel::add_experts(const std::string& name, DType dtype, int64_t n_in, int64_t n_out,
                                     int64_t n_expert, float scale) {
  auto& slot = weights_[name];
  slot.first = make_weight(dtype, n_in, n_out * n_expert, scale);
  slot.second = make_tensor(dtype, {n_in, n_out, n_expert}, slot.first.bytes.data());
  return slot.first;
}

void FakeModel::set_values(const std::string& name, const std::vector<float>& values) {
  Weight& w = weights_.at(name).first;
  if (values.size() != w.value.size()) throw std::runtime_error("set_values: " + name + " has another size");
  std::vector<float> back(static_cast<size_t>(w.n_in));
  for (int64_t r = 0; r < w.n_out; ++r) {
    char* dst = reinterpret_cast<char*>(w.bytes.data()) + r * w.row_bytes();
    quantize_row(w.dtype, values.data() + r * w.n_in, dst, w.n_in);
    dequantize_row(w.dtype, dst, back.data(), w.n_in);
    for (int64_t i = 0; i < w.n_in; ++i) w.value[r * w.n_in + i] = back[i];
  }
}

void FakeModel::poison(const std::string& name, int64_t row0, int64_t rows) {
  Weight& w = weights_.at(name).first;
  std::memset(reinterpret_cast<char*>(w.bytes.data()) + row0 * w.row_bytes(), 0xff,
              static_cast<size_t>(rows) * w.row_bytes());
}

const Tensor* FakeModel::weight(std::string_view name) const {
  auto it = weights_.find(name);
  return it == weights_.end() ? nullptr : &it->second.second;
}

const StageEntry& RecordingRegistry::stage(StageKind kind, const std::string& variant) const {
  for (const StageEntry& e : stages)
    if (e.kind == kind && e.variant == variant) return e;
  throw std::runtime_error("no vulkan entry " + std::string(stage_kind_name(kind)) + "/" + variant);
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
  be.copy_to_host(t, v.data(), v.size() * sizeof(float), be.stream());
  be.stream().synchronize();
  return v;
}

}  // namespace semline::vktest
