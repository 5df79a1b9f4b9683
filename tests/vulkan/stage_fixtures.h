// What the vulkan stage tests share: the float64 references of tests/common/reference_stages.h,
// a small in-memory llama layer on a shared vulkan backend, a KV cache of one layer on the
// device, and device rows with their host copy.
//
// Tolerances (largest error over the largest reference value): 1e-5 for every weight dtype (the
// kernels dequantise weights exactly and keep activations in float, so only float arithmetic
// differs); 2e-3 with an F16 KV cache (keys and values are rounded to half precision from float
// here and from double in the reference, and a value at a rounding boundary may land one
// half-ulp apart).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "common/reference_stages.h"
#include "common/station_fixtures.h"
#include "vulkan/vulkan_test_util.h"

namespace semline::vktest {

using testing::add_moe_weights;
using testing::Cache;
using testing::choose_experts;
using testing::fused;
using testing::Heads;
using testing::kAllWeights;
using testing::kAttnTensors;
using testing::matvec;
using testing::moe_reference;
using testing::plus;
using testing::Project;
using testing::Qkv;
using testing::RefAttention;
using testing::rmsnorm;
using testing::rope;
using testing::round_f16;
using testing::router_separates;
using testing::separate;
using testing::StepData;
using testing::Vec;

// ---------------------------------------------------------------------------------------------
// Fixtures

// The backend of the stage tests, one per reduction path for the whole process: on llvmpipe
// building a pipeline (LLVM compiles it) costs more than running a case, and a backend keeps the
// pipelines it built, so the cases of a test share them. Never destroyed (the process ends first).
vk::VulkanBackend& shared_backend(bool subgroups);

// A small llama layer (n_embd 64, n_ff 96; by default 8 query heads over 2 kv heads of 8 dims)
// on the shared backend of its reduction path.
struct Layer {
  HParams hp;
  FakeModel model;
  vk::VulkanBackend* be;

  explicit Layer(bool subgroups = true, RopeType rope_type = RopeType::Normal, Heads h = {});
  StageContext context(std::string station, std::vector<std::pair<std::string, std::string>> tensors,
                       int32_t max_tokens = 16) {
    return testing::layer_context(*be, model, hp, std::move(station), std::move(tensors), max_tokens);
  }
};

// The vulkan entry's stage for a context (testing::build_stage).
inline std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                                    std::map<std::string, ParamValue> params = {}) {
  return testing::build_stage(vulkan_entries(), kind, variant, std::move(ctx), std::move(params));
}

// Random rows on the host and their copy on the device.
struct Rows {
  std::vector<float> host;
  int64_t width;
  DeviceRows dev;
  Rows(Backend& be, int64_t rows, int64_t w, float scale = 1.0f)
      : host(random_floats(rows * w, scale)), width(w), dev(be, host, w) {}
  Rows(Backend& be, std::vector<float> values, int64_t w) : host(std::move(values)), width(w), dev(be, host, w) {}
  Vec row(int64_t r) const { return Vec(host.begin() + r * width, host.begin() + (r + 1) * width); }
};

// What a stage added to out: read back minus the rows it started from.
Vec added(Backend& be, const Rows& out);

inline void add_attention_weights(Layer& l, DType dt) { testing::add_attention_weights(l.model, l.hp, dt); }

}  // namespace semline::vktest
