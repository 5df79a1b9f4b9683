// What the vulkan kernels share: device rows, weights and vectors, the gather push constants.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <semline/stage.h>

#include "backend/vulkan_backend.h"
#include "stations/stations.h"

namespace semline::vk {

using stations::station_label;
using stations::tensor_name;

// F32 rows of an activation tensor on the device, as word offsets for the kernels.
struct DevRows {
  const GpuBuffer* buf = nullptr;
  uint32_t off = 0;     // words to element 0
  uint32_t stride = 0;  // words between rows
};
// The rows of a tensor in a vulkan buffer as the shaders address them (F32, rows nb[1] bytes apart;
// the stations check them with stations::activation_rows).
inline DevRows dev_rows(const Tensor& t) {
  return DevRows{&static_cast<const VulkanBuffer*>(t.buffer)->gpu(), static_cast<uint32_t>(t.offset / 4),
                 static_cast<uint32_t>(t.nb[1] / 4)};
}
// A weight matrix W: n_in -> n_out on the device, [n_out][n_in] in the file's dtype; or a stack
// of n_expert such matrices one after another (Mixtral's experts).
struct DevWeight {
  DType dtype = DType::F32;
  int64_t n_in = 0, n_out = 0, n_expert = 1;
  const GpuBuffer* buf = nullptr;
  uint32_t offset = 0;    // bytes
  uint32_t row_bytes = 0;
  uint32_t expert_bytes = 0;  // from one expert's matrix to the next: row_bytes * n_out
  double bytes() const { return static_cast<double>(row_bytes) * static_cast<double>(n_out); }  // one matrix
};

// The weight of `role` on the device (copied once per tensor), from its host view as
// stations::weight_view checked it: one matrix, ne = {n_in, n_out}, or a stack of n_expert of them.
// Throws when it is more than the kernels address.
DevWeight device_weight(const StageContext& ctx, std::string_view role, const Tensor& view);

// n F32 values on the device at word offset `off` of `buf`: a norm's scale and shift, a bias.
struct DevVector {
  const GpuBuffer* buf = nullptr;
  uint32_t off = 0;
};
// Copies floats a stage derived at bind to the device (not shared between stages).
DevVector upload_floats(VulkanBackend& be, const std::vector<float>& v, const std::string& label);

// The push constants of get_rows.comp: out[r] (+)= row ints[idx_off + r] of src, as floats.
struct GetRowsPush {
  uint32_t src_off, src_row, n;  // bytes to row 0, bytes between rows, values per row
  uint32_t idx_off, out_off, out_stride, rows, accumulate;
};

inline uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }

}  // namespace semline::vk
