// float64 references of the stations the backend plugin tests (cpu, vulkan) check, written out
// plainly (no kernels), and the host arrays of one step.
#pragma once

#include <functional>
#include <map>
#include <utility>
#include <vector>

#include <semline/stage.h>

#include "common/plugin_fixtures.h"

namespace semline::testing {

using Vec = std::vector<double>;

// W x. A weight with q8_input meets its input quantised to 8 bits in blocks of 32 (d = max|x| /
// 127, q = round(x / d)) as the stage does, so only float rounding separates the two (plus,
// rarely, a value the stage's float arithmetic puts on the other side of a rounding step). `row0`
// and `n_out` pick rows [row0, row0 + n_out) of w (one expert of a stack); n_out < 0: all rows.
// Rounds x to 8 bits in blocks of 32 exactly as the cpu stages round the input of a Q8_0 / Q4_0
// product: in float, d = max|x| / 127, q = x * (1 / d) rounded to nearest even, value q * d.
// Matching the float steps (not x / d in double) keeps the reference on the stages' side of
// every rounding tie, so what is left is the products' float-against-double error.
void round_like_q8_input(Vec& x);
// Rounds x to Q8_0 blocks as the cpu stages write a Q8_0 KV cache row: d = max|x| / 127 in float,
// q = x * (1 / d) rounded to nearest even, value q * d with d rounded to F16.
void round_like_kv_q8(Vec& x);

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
// Three maps q, k, v, each with its bias (null: none).
Project separate(const Weight& wq, const Weight& wk, const Weight& wv, const Weight* bq = nullptr,
                 const Weight* bk = nullptr, const Weight* bv = nullptr);
// One map whose output rows are q | k | v (GPT-2's c_attn), with its bias.
Project fused(const Weight& wqkv, const Weight* bias, int64_t qd, int64_t kd);

// Attention of one layer with its own KV store: sequence -> position -> (k, v) after RoPE (none
// when the model has no rotary embedding).
// Scores q . k / sqrt(head_dim), or times hp.extra attention_scale, soft-capped by
// attn_logit_softcap where it is set (Gemma 2).
struct RefAttention {
  const HParams& hp;
  Project project;
  const Weight& wo;
  const Weight* o_bias;
  DType cache;  // F32, F16 (keys and values rounded to F16) or Q8_0 (to its blocks, as round_like_kv_q8)
  std::map<int, std::map<int32_t, std::pair<Vec, Vec>>> kv;
  Mask mask = causal_mask();
  // With a Q8_0 cache: the scaled query rounded to 8 bits per block of 32 (d = max / 127) before
  // it meets the keys, as the cpu's attention cores round it (round_q8_blocks).
  bool q8_query = false;

  // Contributions (the stage adds them to out) for the batch rows x.
  std::vector<Vec> step(const std::vector<Vec>& x, const std::vector<int32_t>& pos, const std::vector<int>& seq);
};

// A mixture of experts (Mixtral's ffn): the router [n_expert][n_embd] and the expert stacks
// gate_exps, up_exps [n_expert * n_ff][n_embd] and down_exps [n_expert * n_embd][n_ff], added
// to `model` with random values (hp.n_expert of them).
void add_moe_weights(FakeModel& model, const HParams& hp, DType dt);
// The experts a row chooses, in rank order (larger logit first, equal logits: lower index first).
std::vector<int64_t> choose_experts(const Vec& logits, int64_t n_used);
// Whether the router separates x: false where the last chosen and the first unchosen logit are
// within 1e-4 (the stage's float rounding may then rightly pick the other expert).
bool router_separates(const Weight& router, const Vec& x, int64_t n_used);
// The float64 layer for the row x: softmax over all experts, the chosen ones' probabilities
// renormalised, each chosen expert a SwiGLU.
Vec moe_reference(const FakeModel& model, const HParams& hp, const Vec& x);

// The host arrays of one step.
struct StepData {
  std::vector<int32_t> tokens, pos, seq, outputs;
  std::vector<std::vector<int32_t>> tables;
  std::vector<SeqView> views;
  Batch batch();
};

}  // namespace semline::testing
