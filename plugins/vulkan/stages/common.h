// What the vulkan stages share: naming a station, checking activations and binding weights.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <semline/stage.h>

#include "backend/vulkan_backend.h"

namespace semline::vk {

// "station 'attn' (layer 3)" — how errors and logs name the stage.
std::string station_label(const StageContext& ctx);

// The hyper-parameters of a station; throws naming it when the host gave none.
const HParams& hparams_of(const StageContext& ctx);

// F32 rows of an activation tensor on the device, as word offsets for the kernels.
struct DevRows {
  const GpuBuffer* buf = nullptr;
  uint32_t off = 0;     // words to element 0
  uint32_t stride = 0;  // words between rows
};
// Checks `rows` rows of `width` floats of a stage's input or output on this backend.
DevRows activation(const VulkanBackend& be, const Tensor& t, int64_t width, int64_t rows, const char* what,
                   const std::string& label);

// A weight matrix W: n_in -> n_out on the device, [n_out][n_in] in the file's dtype.
struct DevWeight {
  DType dtype = DType::F32;
  int64_t n_in = 0, n_out = 0;
  const GpuBuffer* buf = nullptr;
  uint32_t offset = 0;    // bytes
  uint32_t row_bytes = 0;
  double bytes() const { return static_cast<double>(row_bytes) * static_cast<double>(n_out); }
};

// The weight bound to `role`, checked against the expected shape (`dims` names it in messages,
// e.g. "(n_embd, n_head * head_dim)") and copied to the device (once per tensor).
DevWeight bind_weight(const StageContext& ctx, std::string_view role, int64_t n_in, int64_t n_out, const char* dims);

// The weight of a role converted to float on the host (a norm's scale), for upload_private.
std::vector<float> weight_as_floats(const StageContext& ctx, std::string_view role, int64_t n);

// The dtypes the vulkan kernels read.
bool weight_dtype_supported(DType t);
// Reasons the station's bound weights cannot be read by these kernels (empty: they can).
std::vector<std::string> weights_supported(const StageContext& ctx);
// Adds a reason for each of `roles` the station binds: the vulkan kernels have no use for it,
// so running without it would compute another function (`what` says what it stands for).
void refuse_roles(const StageContext& ctx, std::initializer_list<std::string_view> roles, const char* what,
                  std::vector<std::string>& why);

inline uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }

}  // namespace semline::vk
