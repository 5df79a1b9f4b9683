// What a backend supplies to the stations written once (stations/*.cpp): memory for scratch
// rows, weights bound in the backend's own layout, and the kernels the stations call in order.
// The stations own everything else: binding and checks, shapes, scratch sizing, cost() and the
// order of the work, the residual adds included. A backend keeps inside its kernels what makes
// each fast: tiling, repacking, fusing an activation into a product's epilogue, recording commands.
//
// Activations are F32 rows in the backend's memory, given as Tensors with ne = {width, rows} and
// nb[1] the bytes between rows (stations/binding.h makes them from a stage's input and output and
// from scratch). Every kernel is enqueued on the step's stream; a backend may run it at once (cpu)
// or record it (vulkan).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <semline/model.h>
#include <semline/stage.h>

#include "stations/attention.h"

namespace semline::stations {

// A weight matrix W: n_in -> n_out ([n_out][n_in] in the file, any weight dtype) and its optional
// bias, bound by a backend for its linear products (copied to the device, repacked for its tiles:
// the backend's business).
class LinearWeight {
 public:
  virtual ~LinearWeight() = default;
  DType dtype = DType::F32;
  int64_t n_in = 0, n_out = 0;
  bool bias = false;
  // Bytes one product reads of it: the matrix as stored and the bias.
  double bytes() const {
    return static_cast<double>(dtype_row_bytes(dtype, n_in)) * static_cast<double>(n_out) +
           (bias ? 4.0 * static_cast<double>(n_out) : 0.0);
  }
};

// A stack of n_expert matrices n_in -> n_out (ne = {n_in, n_out, n_expert}, as GGUF stores
// Mixtral's ffn_{gate,up,down}_exps), bound for expert products.
class ExpertWeights {
 public:
  virtual ~ExpertWeights() = default;
  DType dtype = DType::F32;
  int64_t n_in = 0, n_out = 0, n_expert = 0;
  double bytes() const {  // one expert's matrix
    return static_cast<double>(dtype_row_bytes(dtype, n_in)) * static_cast<double>(n_out);
  }
};

// A step's routing, the backend's state sized once for the most tokens: per token its n_used
// experts and their weights, and the (token, expert) slots grouped by expert. Slot rows of the
// expert kernels are m * n_used, numbered as the backend likes.
class ExpertRouting {
 public:
  virtual ~ExpertRouting() = default;
  int64_t n_expert = 0, n_used = 0;
  bool renormalize = true;  // the chosen experts' weights sum to 1; else each is its softmax over all
  // The experts computed here, [first, first + count) (expert parallelism: this rank's); the slots
  // are those of these experts only, and a token's other choices add nothing here.
  int64_t first = 0, count = 0;
};

// Rows read by index (an embedding table): rows of `width` values in the file's dtype.
class RowTable {
 public:
  virtual ~RowTable() = default;
  DType dtype = DType::F32;
  int64_t width = 0, rows = 0;
};

// A norm's scale and, for LayerNorm, its shift: n floats each.
class NormWeights {
 public:
  virtual ~NormWeights() = default;
  int64_t n = 0;
  bool shift = false;
};

// One product of a `linear` call: y (+)= W x (+ b) over the call's m input rows.
struct Product {
  const LinearWeight* w = nullptr;
  Tensor y;                 // m rows of w->n_out values
  bool accumulate = false;  // add into y (a residual add) instead of writing it
};

// Which of the step's host index arrays a gather reads (Batch::tokens, positions, output_rows).
enum class BatchIndex { Tokens, Positions, OutputRows };

enum class NormKind { Rms, Layer };

// Qwen3's per-head RMSNorm of q and k before the rotation: one head's width of scale each (both
// empty: none).
struct HeadNorms {
  std::vector<float> q, k;
  float eps = 0;
  bool on() const { return !q.empty(); }
};

// RoPE and the cache store bound for one attention shape.
class RopeStore {
 public:
  virtual ~RopeStore() = default;
};

class Kernels {
 public:
  virtual ~Kernels() = default;

  // --- memory
  // Scratch is one area per backend: stations run one at a time, so each may use all of it during
  // its forward call. A station reserves what it lays out when it is bound (the area grows then,
  // never during a step) and resolves its offsets at each call: the area may have moved.
  virtual void reserve_scratch(size_t bytes) = 0;
  // `rows` F32 rows of `width` values, `width` apart, at byte `offset` (a multiple of 64) of it.
  virtual Tensor scratch_rows(size_t offset, int64_t width, int64_t rows) = 0;
  // The most tokens a step will carry, declared at bind by a station that gathers by the step's
  // indices (a backend that uploads them sizes its buffers once).
  virtual void reserve_tokens(int32_t max_tokens) = 0;
  // Throws, naming `what` of `label`, unless t's memory is this backend's and holds its rows.
  virtual void check_memory(const Tensor& t, const char* what, const std::string& label) const = 0;
  // Once per station and step, before its first kernel: `step.stream` must be this backend's.
  virtual void begin(const Step& step, const std::string& label) = 0;

  // --- weights (at bind; host views checked by stations/binding.h)
  // The weight of `role` (view: its checked host view, ne = {n_in, n_out}, or the rows of it from
  // view.host on: one part of a fused tensor, as Phi-3's gate | up); bias: n_out values or empty.
  // `max_rows`: the most rows a product with it will take.
  virtual std::unique_ptr<LinearWeight> bind_linear(const StageContext& ctx, std::string_view role,
                                                    const Tensor& view, std::vector<float> bias,
                                                    int64_t max_rows) = 0;
  // The table of `role` read row by row, never repacked (a tied head binds the same tensor with
  // bind_linear on its own).
  virtual std::unique_ptr<RowTable> bind_table(const StageContext& ctx, std::string_view role,
                                               const Tensor& view) = 0;
  // shift empty for RMSNorm.
  virtual std::unique_ptr<NormWeights> bind_norm(const std::string& label, std::vector<float> scale,
                                                 std::vector<float> shift) = 0;

  // --- kernels (each enqueued on step.stream)
  // Products side by side over one input: x is m rows of every product's n_in (q, k and v of one
  // input, gate and up). m may be 0.
  virtual void linear(const Step& step, const Tensor& x, std::span<const Product> products, int64_t m) = 0;
  // With a gate, h = act(gate x) * (up x): act Silu (SwiGLU) or Gelu / GeluTanh (GeGLU, Gemma);
  // without one h = act(up x) with act Gelu or GeluTanh (the GELU MLP). tmp: scratch rows of up's
  // n_out the backend may use (the up product, gated).
  // next: the product of the station's very next kernel call, a `linear` over h, so a backend may
  // prepare h for it while each part of h is fresh (the cpu quantises it for a quantised weight).
  virtual void linear_act(const Step& step, const Tensor& x, const LinearWeight* gate, const LinearWeight& up,
                          Activation act, const Tensor& h, const Tensor& tmp, int64_t m,
                          const LinearWeight* next) = 0;
  // y = norm(x) * scale (+ shift), row by row, over m rows of w.n values; y += it when
  // `accumulate` (a post norm adding into the residual stream).
  virtual void norm(const Step& step, NormKind kind, const NormWeights& w, float eps, const Tensor& x,
                    const Tensor& y, int64_t m, bool accumulate) = 0;
  // x = x * s over m rows (Gemma's embedding scale).
  virtual void scale(const Step& step, const Tensor& x, int64_t m, float s) = 0;
  // x = cap * tanh(x / cap) over m rows (Gemma 2's final logit soft-capping).
  virtual void softcap(const Step& step, const Tensor& x, int64_t m, float cap) = 0;
  // out[r] (+)= table[index[r]] as floats for the step's n_tokens rows (Tokens, Positions).
  virtual void gather_table(const Step& step, const RowTable& table, BatchIndex index, const Tensor& out,
                            bool accumulate) = 0;
  // out[r] = x[batch.output_rows[r]] for the step's n_outputs rows.
  virtual void gather_outputs(const Step& step, const Tensor& x, const Tensor& out) = 0;

  // --- attention
  // Throws naming `label` unless the layer's cache is in this backend's memory, in a layout its
  // kernels read (the station has checked dtype F32 or F16, shape and strides).
  virtual void check_kv(const KvLayer& kv, const std::string& label) const = 0;
  virtual std::unique_ptr<RopeStore> bind_rope_store(const AttentionShape& a, const HeadNorms& norms) = 0;
  // For each of the m rows of qkv (q | k | v): RMS-normalises each head of q and k when the norms
  // are on (x / sqrt(mean(x^2) + eps) * scale), rotates q and k by the token's position (none for
  // RopeType::None) and writes k and v into that position's slot of step.kv.
  virtual void rope_store(const Step& step, const RopeStore& r, const Tensor& qkv, int64_t m) = 0;
  // The core a variant asks for; throws naming the station when this backend has none for it.
  virtual std::unique_ptr<AttentionCore> bind_attention(const StageContext& ctx, const AttentionShape& a,
                                                        const CoreSpec& spec) = 0;

  // --- mixture of experts
  // The stack of `role` (view: its checked host view); max_rows: the most slot rows a product takes.
  virtual std::unique_ptr<ExpertWeights> bind_experts(const StageContext& ctx, std::string_view role,
                                                      const Tensor& view, int64_t max_rows) = 0;
  // Experts [first, first + count) of n_expert are computed (bound by bind_experts, numbered from first).
  virtual std::unique_ptr<ExpertRouting> bind_routing(const std::string& label, int64_t n_expert, int64_t n_used,
                                                      int32_t max_tokens, bool renormalize, int64_t first,
                                                      int64_t count) = 0;
  // From m rows of router logits: each token's n_used largest (equal logits: the lower expert
  // first), weighted by the softmax over the chosen logits alone (renormalize: Mixtral) or over
  // every expert (Jamba); the slots grouped by expert.
  virtual void route(const Step& step, const Tensor& logits, int64_t m, ExpertRouting& r) = 0;
  // For each slot (token t, expert e): h[slot] = silu(gate_e x[t]) * (up_e x[t]); tmp: scratch rows
  // like h; next: the expert product over h of the station's very next call (see linear_act).
  virtual void expert_act(const Step& step, const Tensor& x, const ExpertWeights& gate, const ExpertWeights& up,
                          const ExpertRouting& r, const Tensor& h, const Tensor& tmp, const ExpertWeights* next) = 0;
  // d[slot] = w_e h[slot] for each slot of expert e.
  virtual void expert_linear(const Step& step, const Tensor& h, const ExpertWeights& w, const ExpertRouting& r,
                             const Tensor& d) = 0;
  // y[t] += sum of weight * d[slot] over t's slots, in rank order.
  virtual void expert_combine(const Step& step, const Tensor& d, const ExpertRouting& r, const Tensor& y) = 0;
  // Distinct experts the last routing chose; -1 when the host does not see it (it stays on a device).
  virtual int64_t experts_used(const ExpertRouting& r) const = 0;
};

}  // namespace semline::stations
