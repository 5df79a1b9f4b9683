#include "ops/common.h"

#include <limits>

#include <semline/error.h>

namespace semline::vk {

DevWeight device_weight(const StageContext& ctx, std::string_view role, const Tensor& view) {
  const int64_t n_in = view.ne[0], n_out = view.ne[1], n_expert = view.ne[2];
  if (static_cast<double>(view.row_bytes()) * static_cast<double>(n_out) * static_cast<double>(n_expert) >
      std::numeric_limits<uint32_t>::max())
    throw Error(station_label(ctx) + ": tensor '" + tensor_name(ctx, role) + "' (" + std::string(role) +
                ") is larger than the kernels address (4 GiB)");
  VulkanBackend& be = vulkan_backend_of(ctx);
  const Tensor dev = ctx.weight(role);
  const VulkanBuffer& b = be.buffer_of(dev, "weight '" + std::string(role) + "'", station_label(ctx));
  DevWeight w;
  w.dtype = view.dtype;
  w.n_in = n_in;
  w.n_out = n_out;
  w.n_expert = n_expert;
  w.buf = &b.gpu();
  // A part of the tensor (rows from view.host on) starts that many bytes into its device copy.
  const Tensor* whole = ctx.find_weight(role);
  const size_t part = whole && whole->host && view.host
                          ? static_cast<size_t>(static_cast<const char*>(view.host) - static_cast<const char*>(whole->host))
                          : 0;
  w.offset = static_cast<uint32_t>(dev.offset + part);
  w.row_bytes = static_cast<uint32_t>(view.row_bytes());
  w.expert_bytes = static_cast<uint32_t>(view.row_bytes() * n_out);
  return w;
}

DevVector upload_floats(VulkanBackend& be, const std::vector<float>& v, const std::string& label) {
  const Tensor dev = be.upload_private(v.data(), make_tensor(DType::F32, {static_cast<int64_t>(v.size())}));
  return DevVector{&be.buffer_of(dev, "vector", label).gpu(), static_cast<uint32_t>(dev.offset / 4)};
}

}  // namespace semline::vk
