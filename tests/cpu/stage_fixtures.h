// What the cpu stage tests share: the float64 references of tests/common/reference_stages.h
// (the layer's model gives Q8_0 / Q4_0 weights 8-bit input, as the cpu stages do), a small
// in-memory llama layer on a cpu backend and a KV cache of one layer.
//
// Tolerances (largest error over the largest reference value): 1e-5 with F32, F16 or BF16
// weights (the reference uses the weights as stored, so only float arithmetic differs); 1e-2 with
// Q8_0 / Q4_0 weights, whose inputs the reference quantises as the stages do (a value the stage's
// float arithmetic puts across a rounding step of that quantisation moves an output by ~2e-3);
// 2e-3 with an F16 KV cache (the stage rounds keys and values to half precision from float, the
// reference from double, and a value at a rounding boundary may land one half-ulp apart).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "backend/cpu_backend.h"
#include "common/reference_stages.h"
#include "common/station_fixtures.h"
#include "cpu/cpu_test_util.h"

namespace semline::cputest {

using testing::block_sparse_mask;
using testing::Cache;
using testing::causal_mask;
using testing::add_moe_weights;
using testing::choose_experts;
using testing::fused;
using testing::kAllWeights;
using testing::kAttnTensors;
using testing::Mask;
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
using testing::sliding_mask;
using testing::StepData;
using testing::Vec;

// ---------------------------------------------------------------------------------------------
// Fixtures

// A small llama layer: n_embd 64, 8 query heads over 2 kv heads of 8 dims, n_ff 96.
struct Layer {
  HParams hp;
  FakeModel model{cpu::takes_quantized_input};
  cpu::CpuBackend be;

  explicit Layer(RopeType rope_type = RopeType::Normal, int64_t rope_dim = 8, cpu::Isa isa = cpu::best_isa());
  StageContext context(std::string station, std::vector<std::pair<std::string, std::string>> tensors,
                       int32_t max_tokens = 16) {
    return testing::layer_context(be, model, hp, std::move(station), std::move(tensors), max_tokens);
  }
};

// The cpu entry's stage for a context (testing::build_stage).
inline std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                                    std::map<std::string, ParamValue> params = {}) {
  return testing::build_stage(cpu_entries(), kind, variant, std::move(ctx), std::move(params));
}

// Rows of random activations.
struct Rowset {
  std::vector<float> data;
  int64_t width;
  Rowset(int64_t rows, int64_t w, float scale = 1.0f) : data(random_floats(rows * w, scale)), width(w) {}
  Tensor tensor() { return make_tensor(DType::F32, {width, static_cast<int64_t>(data.size()) / width}, data.data()); }
  Vec row(int64_t r) const { return Vec(data.begin() + r * width, data.begin() + (r + 1) * width); }
};

inline double weight_tol(DType dt) { return cpu::takes_quantized_input(dt) ? 1e-2 : 1e-5; }

inline void add_attention_weights(Layer& l, DType dt) { testing::add_attention_weights(l.model, l.hp, dt); }

}  // namespace semline::cputest
