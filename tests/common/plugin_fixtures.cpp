#include "common/plugin_fixtures.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <semline/codec.h>

namespace semline::testing {

std::vector<float> random_floats(int64_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng());
  return v;
}

Weight make_weight(DType dtype, int64_t n_in, int64_t n_out, float scale) {
  Weight w;
  w.dtype = dtype;
  w.n_in = n_in;
  w.n_out = n_out;
  const size_t row = w.row_bytes();
  w.bytes.assign((row * static_cast<size_t>(n_out) + 7) / 8 + 1, 0);
  w.value.resize(static_cast<size_t>(n_in * n_out));
  w.original.resize(w.value.size());
  std::vector<float> f, back(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    f = random_floats(n_in, scale);
    char* dst = reinterpret_cast<char*>(w.bytes.data()) + r * row;
    quantize_row(dtype, f.data(), dst, n_in);
    dequantize_row(dtype, dst, back.data(), n_in);
    for (int64_t i = 0; i < n_in; ++i) {
      w.value[r * n_in + i] = back[i];
      w.original[r * n_in + i] = f[i];
    }
  }
  return w;
}

const Weight& FakeModel::add(const std::string& name, DType dtype, int64_t n_in, int64_t n_out, float scale) {
  auto& slot = weights_[name];
  slot.first = make_weight(dtype, n_in, n_out, scale);
  slot.first.q8_input = q8_input_ && q8_input_(dtype);
  slot.second = n_out == 1 ? make_tensor(dtype, {n_in}, slot.first.bytes.data())
                           : make_tensor(dtype, {n_in, n_out}, slot.first.bytes.data());
  return slot.first;
}

const Weight& FakeModel::add_experts(const std::string& name, DType dtype, int64_t n_in, int64_t n_out,
                                     int64_t n_expert, float scale) {
  auto& slot = weights_[name];
  slot.first = make_weight(dtype, n_in, n_out * n_expert, scale);
  slot.first.q8_input = q8_input_ && q8_input_(dtype);
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
    for (int64_t i = 0; i < w.n_in; ++i) w.value[r * w.n_in + i] = w.original[r * w.n_in + i] = back[i];
  }
}

void FakeModel::poison(const std::string& name, int64_t row0, int64_t rows) {
  Weight& w = weights_.at(name).first;
  char* base = reinterpret_cast<char*>(w.bytes.data());
  std::memset(base + row0 * w.row_bytes(), 0xff, static_cast<size_t>(rows) * w.row_bytes());
}

const Tensor* FakeModel::weight(std::string_view name) const {
  auto it = weights_.find(name);
  return it == weights_.end() ? nullptr : &it->second.second;
}

std::vector<std::string_view> FakeModel::weight_names() const {
  std::vector<std::string_view> names;
  for (const auto& kv : weights_) names.push_back(kv.first);
  return names;
}

const StageEntry& RecordingRegistry::stage(StageKind kind, const std::string& variant) const {
  for (const StageEntry& e : stages)
    if (e.kind == kind && e.variant == variant) return e;
  throw std::runtime_error("no registered entry " + std::string(stage_kind_name(kind)) + "/" + variant);
}

}  // namespace semline::testing
