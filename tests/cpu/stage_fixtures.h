// What the cpu stage tests share: float64 references of the stations (written out plainly, no
// kernels), a small in-memory llama layer on a cpu backend, a KV cache of one layer and the host
// arrays of one step.
//
// Tolerances (largest error over the largest reference value): 1e-5 with F32, F16 or BF16
// weights (the reference uses the weights as stored, so only float arithmetic differs); 1e-2 with
// Q8_0 / Q4_0 weights, whose inputs the reference quantises as the stages do (a value the stage's
// float arithmetic puts across a rounding step of that quantisation moves an output by ~2e-3);
// 2e-3 with an F16 KV cache (the stage rounds keys and values to half precision from float, the
// reference from double, and a value at a rounding boundary may land one half-ulp apart).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "backend/cpu_backend.h"
#include "cpu/cpu_test_util.h"

namespace semline::cputest {

using Vec = std::vector<double>;

// ---------------------------------------------------------------------------------------------
// float64 references

// W x. A Q8_0 / Q4_0 weight meets its input quantised to 8 bits in blocks of 32 (d = max|x| /
// 127, q = round(x / d)): the reference does the same, so only float rounding separates it from
// the stage (plus, rarely, a value the stage's float arithmetic puts on the other side of a
// rounding step). `row0` and `n_out` pick rows [row0, row0 + n_out) of w (one expert of a stack);
// n_out < 0: all rows.
Vec matvec(const Weight& w, const Vec& in, int64_t row0 = 0, int64_t n_out = -1);
Vec rmsnorm(const Vec& x, const Weight& w, double eps);
void rope(double* v, int64_t heads, const HParams& hp, int32_t pos);
double round_f16(double v);

// Which keys a query meets: key position k for a query at position q (k <= q is given).
using Mask = std::function<bool(int32_t q, int32_t k)>;
Mask causal_mask();
Mask sliding_mask(int32_t window);  // q - window < k
// Blocks of `block` positions: query block b meets key block j when b - local < j, j < global or
// j % stride == stride - 1 (stride 0: never).
Mask block_sparse_mask(int32_t block, int32_t local, int32_t global, int32_t stride);

// a + b (b a bias vector; null: none).
Vec plus(Vec a, const Weight* b);

// The query, key and value of one token before rotation.
struct Qkv {
  Vec q, k, v;
};
using Project = std::function<Qkv(const Vec& x)>;
// Three maps q, k, v.
Project separate(const Weight& wq, const Weight& wk, const Weight& wv);
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
  Mask mask = causal_mask();

  // Contributions (the stage adds them to out) for the batch rows x.
  std::vector<Vec> step(const std::vector<Vec>& x, const std::vector<int32_t>& pos, const std::vector<int>& seq);
};

// ---------------------------------------------------------------------------------------------
// Fixtures

// A small llama layer: n_embd 64, 8 query heads over 2 kv heads of 8 dims, n_ff 96.
struct Layer {
  HParams hp;
  FakeModel model;
  cpu::CpuBackend be;

  explicit Layer(RopeType rope_type = RopeType::Normal, int64_t rope_dim = 8, cpu::Isa isa = cpu::best_isa());
  StageContext context(std::string station, std::vector<std::pair<std::string, std::string>> tensors,
                       int32_t max_tokens = 16);
};

// The entry's stage for a context, its parameters defaulted then set from `params`; requires the
// entry's supports() to accept the station.
std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                             std::map<std::string, ParamValue> params = {});

// A KV cache of one layer allocated on the backend.
struct Cache {
  std::unique_ptr<Buffer> kbuf, vbuf;
  KvLayer layer;
  Cache(Backend& be, const HParams& hp, DType dt, int32_t block_tokens, int64_t n_blocks);
};

// The host arrays of one step.
struct StepData {
  std::vector<int32_t> tokens, pos, seq, outputs;
  std::vector<std::vector<int32_t>> tables;
  std::vector<SeqView> views;
  Batch batch();
};

// Rows of random activations.
struct Rowset {
  std::vector<float> data;
  int64_t width;
  Rowset(int64_t rows, int64_t w, float scale = 1.0f) : data(random_floats(rows * w, scale)), width(w) {}
  Tensor tensor() { return make_tensor(DType::F32, {width, static_cast<int64_t>(data.size()) / width}, data.data()); }
  Vec row(int64_t r) const { return Vec(data.begin() + r * width, data.begin() + (r + 1) * width); }
};

inline double weight_tol(DType dt) { return cpu::takes_quantized_input(dt) ? 1e-2 : 1e-5; }

inline constexpr DType kAllWeights[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

void add_attention_weights(Layer& l, DType dt);
inline const std::vector<std::pair<std::string, std::string>> kAttnTensors = {
    {"q", "q"}, {"k", "k"}, {"v", "v"}, {"o", "o"}};

}  // namespace semline::cputest
