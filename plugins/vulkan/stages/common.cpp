#include "stages/common.h"

#include <limits>

#include <semline/codec.h>
#include <semline/error.h>

#include "stations/binding.h"

namespace semline::vk {

DevRows activation(const VulkanBackend& be, const Tensor& t, int64_t width, int64_t rows, const char* what,
                   const std::string& label) {
  const VulkanBuffer& b = be.buffer_of(t, what, label);
  auto name = [&] { return label + ": " + what; };  // messages only: this runs every step
  if (t.dtype != DType::F32 || t.nb[0] != 4 || t.ne[0] < width || (rows > 1 && t.nb[1] % 4 != 0))
    throw Error(name() + " must be F32 rows of " + std::to_string(width) + " values, got " + tensor_shape_string(t));
  if (t.rows() < rows)
    throw Error(name() + " " + tensor_shape_string(t) + " has " + std::to_string(t.rows()) +
                " rows; the step needs " + std::to_string(rows));
  const int64_t stride = rows > 1 ? t.nb[1] / 4 : width;
  if (rows > 1 && stride < width) throw Error(name() + " " + tensor_shape_string(t) + " has overlapping rows");
  const uint64_t end = t.offset + static_cast<uint64_t>(rows > 0 ? (rows - 1) * stride + width : 0) * 4;
  if (end > b.size())
    throw Error(name() + " " + tensor_shape_string(t) + " reaches past the end of its buffer (" +
                std::to_string(b.size()) + " bytes)");
  return DevRows{&b.gpu(), static_cast<uint32_t>(t.offset / 4), static_cast<uint32_t>(stride)};
}

namespace {

// The host view of a role, checked (stations/binding.h) and within what the kernels address.
Tensor checked_view(const StageContext& ctx, std::string_view role, int64_t n_in, int64_t n_out, int64_t n_expert,
                    const char* dims) {
  const Tensor t = n_expert == 1 ? stations::weight_view(ctx, role, {n_in, n_out}, dims)
                                 : stations::weight_view(ctx, role, {n_in, n_out, n_expert}, dims);
  if (static_cast<double>(t.row_bytes()) * static_cast<double>(n_out) * static_cast<double>(n_expert) >
      std::numeric_limits<uint32_t>::max())
    throw Error(station_label(ctx) + ": tensor '" + tensor_name(ctx, role) + "' (" + std::string(role) +
                ") is larger than the kernels address (4 GiB)");
  return t;
}

}  // namespace

DevWeight bind_experts(const StageContext& ctx, std::string_view role, int64_t n_in, int64_t n_out, int64_t n_expert,
                       const char* dims) {
  VulkanBackend& be = vulkan_backend_of(ctx);
  const Tensor view = checked_view(ctx, role, n_in, n_out, n_expert, dims);
  const Tensor dev = ctx.weight(role);
  const VulkanBuffer& b = be.buffer_of(dev, "weight '" + std::string(role) + "'", station_label(ctx));
  DevWeight w;
  w.dtype = view.dtype;
  w.n_in = n_in;
  w.n_out = n_out;
  w.n_expert = n_expert;
  w.buf = &b.gpu();
  w.offset = static_cast<uint32_t>(dev.offset);
  w.row_bytes = static_cast<uint32_t>(view.row_bytes());
  w.expert_bytes = static_cast<uint32_t>(view.row_bytes() * n_out);
  return w;
}

DevWeight bind_weight(const StageContext& ctx, std::string_view role, int64_t n_in, int64_t n_out, const char* dims) {
  return bind_experts(ctx, role, n_in, n_out, 1, dims);
}

DevVector upload_floats(VulkanBackend& be, const std::vector<float>& v, const std::string& label) {
  const Tensor dev = be.upload_private(v.data(), make_tensor(DType::F32, {static_cast<int64_t>(v.size())}));
  return DevVector{&be.buffer_of(dev, "vector", label).gpu(), static_cast<uint32_t>(dev.offset / 4)};
}

DevVector bind_bias(const StageContext& ctx, std::string_view role, int64_t n) {
  if (!is_bound(ctx, role)) return {};
  return upload_floats(vulkan_backend_of(ctx), stations::weight_vector(ctx, role, n, "(n_out)"), station_label(ctx));
}

}  // namespace semline::vk
