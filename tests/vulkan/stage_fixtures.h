// What the vulkan stage tests share: float64 references of the stations (written out plainly, no
// kernels), a small in-memory llama layer on a fresh vulkan backend, a KV cache of one layer on
// the device, the host arrays of one step, and device rows with their host copy.
//
// Tolerances (largest error over the largest reference value): 1e-5 for every weight dtype (the
// kernels dequantise weights exactly and keep activations in float, so only float arithmetic
// differs); 2e-3 with an F16 KV cache (keys and values are rounded to half precision from float
// here and from double in the reference, and a value at a rounding boundary may land one
// half-ulp apart).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "vulkan/vulkan_test_util.h"

namespace semline::vktest {

using Vec = std::vector<double>;

// ---------------------------------------------------------------------------------------------
// float64 references

// Rows [row0, row0 + n_out) of w (one expert of a stack; n_out < 0: all rows) times x.
Vec matvec(const Weight& w, const Vec& x, int64_t row0 = 0, int64_t n_out = -1);
Vec rmsnorm(const Vec& x, const Weight& w, double eps);
void rope(double* v, int64_t heads, const HParams& hp, int32_t pos);
double round_f16(double v);
// a + b (b a bias vector; null: none).
Vec plus(Vec a, const Weight* b);

// The query, key and value of one token before rotation.
struct Qkv {
  Vec q, k, v;
};
using Project = std::function<Qkv(const Vec& x)>;
// Three maps q, k, v, each with its bias (null: none).
Project separate(const Weight& wq, const Weight& wk, const Weight& wv, const Weight* bq = nullptr,
                 const Weight* bk = nullptr, const Weight* bv = nullptr);
// One map whose output rows are q | k | v (GPT-2's c_attn), with its bias.
Project fused(const Weight& wqkv, const Weight* bias, int64_t qd, int64_t kd);

// Attention of one layer with its own KV store: sequence -> position -> (k, v) after RoPE (none
// when the model has no rotary embedding).
struct RefAttention {
  const HParams& hp;
  Project project;
  const Weight& wo;
  const Weight* o_bias;
  bool f16_cache;
  std::map<int, std::map<int32_t, std::pair<Vec, Vec>>> kv;

  // Contributions (the stage adds them to out) for the batch rows x.
  std::vector<Vec> step(const std::vector<Vec>& x, const std::vector<int32_t>& pos, const std::vector<int32_t>& seq);
};

// ---------------------------------------------------------------------------------------------
// Fixtures

// Attention geometry: query heads, kv heads, dims per head, rotated dims.
struct Heads {
  int64_t n_head = 8, n_kv = 2, head_dim = 8, rope_dim = 8;
};

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
                       int32_t max_tokens = 16);
};

// The entry's stage for a context, its parameters defaulted then set from `params`; requires the
// entry's supports() to accept the station.
std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                             std::map<std::string, ParamValue> params = {});

// A KV cache of one layer allocated on the device.
struct Cache {
  std::unique_ptr<Buffer> kbuf, vbuf;
  KvLayer layer;
  Cache(Backend& be, const HParams& hp, DType dt, int32_t block_tokens, int64_t n_blocks);
};

// The host arrays of one step.
struct Steps {
  std::vector<int32_t> tokens, pos, seq, outputs;
  std::vector<std::vector<int32_t>> tables;
  std::vector<SeqView> views;
  Batch batch();
};

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

inline constexpr DType kAllWeights[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

void add_attention_weights(Layer& l, DType dt);
inline const std::vector<std::pair<std::string, std::string>> kAttnTensors = {
    {"q", "q"}, {"k", "k"}, {"v", "v"}, {"o", "o"}};

}  // namespace semline::vktest
