// ffn/sparse: the SwiGLU feed-forward with training-free activation sparsity, in the manner of
// TEAL (Liu et al., "Training-Free Activation Sparsity in Large Language Models", 2024) and CATS.
//
// In a decoder the activations entering a projection are heavy-tailed: most entries are small and
// contribute little to W x. Dropping the smallest fraction `sparsity` of them by magnitude, per
// token, turns W x into a sum over the kept entries i of x_i * (column i of W): a decoding step then
// reads only the kept columns, so at sparsity s a memory-bound step moves about (1 - s) of the
// feed-forward weights. TEAL calibrates one magnitude threshold per projection offline; this
// plugin keeps the exact top (1 - s) entries of each token instead, which is what those thresholds
// approximate and needs no calibration data.
//
// Both inputs are sparsified: x (the normed hidden state) before the gate and up projections, and
// h = silu(gate x) * (up x) before the down projection. To read whole columns the weights are
// stored transposed, as F32: row i of `gate_up_t_` holds column i of W_gate and of W_up side by
// side, row j of `down_t_` column j of W_down. At sparsity 0 the stage computes the dense SwiGLU.
//
// This is an approximation of the model: `semline bench` against ffn/dense shows what it costs in
// quality (KL divergence, top-1 agreement, perplexity) and what it gains in speed.
#include <semline/codec.h>
#include <semline/plugin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

namespace {

using semline::DType;
using semline::Error;
using semline::Tensor;

// y[0..n) += a * x[0..n). Cloned for the vector units GCC knows and chosen when the plugin loads,
// so one build runs well on any x86-64 machine.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void axpy(float a, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// The indices of the `keep` entries of x[0..n) largest in magnitude, in ascending index order (so
// the weight rows are read front to back).
void top_magnitude(const float* x, int64_t n, int64_t keep, std::vector<int32_t>& idx) {
  idx.resize(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (keep < n) {
    std::nth_element(idx.begin(), idx.begin() + keep, idx.end(),
                     [x](int32_t a, int32_t b) { return std::fabs(x[a]) > std::fabs(x[b]); });
    idx.resize(static_cast<size_t>(keep));
  }
  std::sort(idx.begin(), idx.end());
}

// A weight's values as floats [rows][cols], whatever its (plain) dtype.
std::vector<float> dequantized(const Tensor& w) {
  const int64_t cols = w.ne[0], rows = w.ne[1];
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    semline::dequantize_row(w.dtype, static_cast<const char*>(w.host) + r * w.nb[1], v.data() + r * cols, cols);
  return v;
}

class SparseFfn final : public semline::Stage {
 public:
  explicit SparseFfn(const semline::StageContext& ctx)
      : backend_(*ctx.backend), label_("station '" + ctx.station + "' (layer " + std::to_string(ctx.layer) + ")") {
    const semline::HParams& hp = *ctx.hp;
    n_embd_ = hp.n_embd;
    n_ff_ = hp.n_ff;
    const double s = ctx.params.get_float("sparsity");
    keep_x_ = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - s) * static_cast<double>(n_embd_))));
    keep_h_ = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - s) * static_cast<double>(n_ff_))));

    const Tensor gate = host_weight(ctx, "gate", n_embd_, n_ff_);
    const Tensor up = host_weight(ctx, "up", n_embd_, n_ff_);
    const Tensor down = host_weight(ctx, "down", n_ff_, n_embd_);
    const std::vector<float> g = dequantized(gate), u = dequantized(up), d = dequantized(down);
    gate_up_t_.resize(static_cast<size_t>(n_embd_ * 2 * n_ff_));
    for (int64_t j = 0; j < n_ff_; ++j)
      for (int64_t i = 0; i < n_embd_; ++i) {
        gate_up_t_[i * 2 * n_ff_ + j] = g[j * n_embd_ + i];
        gate_up_t_[i * 2 * n_ff_ + n_ff_ + j] = u[j * n_embd_ + i];
      }
    down_t_.resize(static_cast<size_t>(n_ff_ * n_embd_));
    for (int64_t c = 0; c < n_embd_; ++c)
      for (int64_t j = 0; j < n_ff_; ++j) down_t_[j * n_embd_ + c] = d[c * n_ff_ + j];
    gu_.resize(static_cast<size_t>(2 * n_ff_));
    h_.resize(static_cast<size_t>(n_ff_));
  }

  void forward(const Tensor& in, const Tensor& out, const semline::Step& step) override {
    const int64_t m = step.batch.n_tokens;
    if (!in.host || !out.host || in.dtype != DType::F32 || out.dtype != DType::F32 || in.ne[0] != n_embd_ ||
        out.ne[0] != n_embd_ || in.rows() < m || out.rows() < m)
      throw Error(label_ + ": ffn/sparse needs F32 rows of " + std::to_string(n_embd_) + " values in host memory, got " +
                  semline::tensor_shape_string(in) + " -> " + semline::tensor_shape_string(out));
    for (int64_t t = 0; t < m; ++t) {
      const float* x = reinterpret_cast<const float*>(static_cast<const char*>(in.host) + t * in.nb[1]);
      float* y = reinterpret_cast<float*>(static_cast<char*>(out.host) + t * out.nb[1]);
      token(x, y);
    }
  }

  semline::StageCost cost(const semline::Batch& b) const override {
    // Per token: the kept rows of both transposed matrices are read (no reuse across tokens).
    const double m = b.n_tokens, kx = static_cast<double>(keep_x_), kh = static_cast<double>(keep_h_);
    const double flops = m * (2.0 * kx * 2.0 * n_ff_ + 2.0 * kh * n_embd_ + 6.0 * n_ff_);
    const double bytes = m * (4.0 * (kx * 2.0 * n_ff_ + kh * n_embd_) + 8.0 * n_embd_ + 16.0 * n_ff_);
    return {flops, bytes};
  }

 private:
  // The weight bound to a role, as a host matrix [n_out][n_in] of a dtype this stage reads.
  static Tensor host_weight(const semline::StageContext& ctx, const char* role, int64_t n_in, int64_t n_out) {
    const Tensor* w = ctx.find_weight(role);
    if (!w) throw Error("station '" + ctx.station + "': ffn/sparse needs a '" + role + "' weight");
    if (w->ne[0] != n_in || w->ne[1] != n_out || !w->host)
      throw Error("station '" + ctx.station + "': weight '" + role + "' is " + semline::tensor_shape_string(*w) +
                  ", expected [" + std::to_string(n_in) + ", " + std::to_string(n_out) + "] in host memory");
    return *w;
  }

  // One token: y += W_down sparse(silu(W_gate sparse(x)) * (W_up sparse(x))).
  void token(const float* x, float* y) {
    top_magnitude(x, n_embd_, keep_x_, idx_);
    std::fill(gu_.begin(), gu_.end(), 0.0f);
    // Each worker owns a range of output columns and walks every kept row over it.
    over_columns(2 * n_ff_, [&](int64_t c0, int64_t c1) {
      for (int32_t i : idx_) axpy(x[i], gate_up_t_.data() + i * 2 * n_ff_ + c0, gu_.data() + c0, c1 - c0);
    });
    for (int64_t j = 0; j < n_ff_; ++j) {
      const float g = gu_[j];
      h_[j] = g / (1.0f + std::exp(-g)) * gu_[n_ff_ + j];
    }
    top_magnitude(h_.data(), n_ff_, keep_h_, idx_);
    over_columns(n_embd_, [&](int64_t c0, int64_t c1) {
      for (int32_t j : idx_) axpy(h_[j], down_t_.data() + j * n_embd_ + c0, y + c0, c1 - c0);
    });
  }

  // fn(c0, c1) over [0, cols) split across the backend's threads, in whole cache lines.
  template <class F>
  void over_columns(int64_t cols, F&& fn) {
    constexpr int64_t kLine = 16;  // floats per 64-byte line
    backend_.parallel_for((cols + kLine - 1) / kLine, [&](int64_t b, int64_t e) {
      fn(b * kLine, std::min(e * kLine, cols));
    });
  }

  semline::Backend& backend_;
  std::string label_;
  int64_t n_embd_ = 0, n_ff_ = 0;
  int64_t keep_x_ = 0, keep_h_ = 0;  // entries of x and of h kept per token
  std::vector<float> gate_up_t_;     // [n_embd][2 n_ff]: column i of W_gate, then of W_up
  std::vector<float> down_t_;        // [n_ff][n_embd]: column j of W_down
  std::vector<float> gu_, h_;        // one token's gate|up outputs and silu(gate) * up
  std::vector<int32_t> idx_;         // kept entries of the current input
};

std::vector<std::string> supports(const semline::StageContext& ctx) {
  std::vector<std::string> why;
  if (!ctx.hp) return {"no hyper-parameters"};
  if (ctx.hp->n_expert > 0) why.push_back("the model has experts; ffn/sparse computes one feed-forward network");
  for (const char* role : {"gate", "up", "down"})
    if (!ctx.has_weight(role)) why.push_back(std::string("no '") + role + "' weight: ffn/sparse is a SwiGLU feed-forward");
  return why;
}

void register_all(semline::Registry& r) {
  r.add_stage({
      .kind = semline::StageKind::Ffn, .variant = "sparse", .backend = "cpu",
      .description = "SwiGLU with activation sparsity: the smallest activations dropped per token, only kept columns read",
      .params = {{"sparsity", semline::ParamType::Float, 0.5,
                  "fraction of each token's activations (x and silu(gate) * up) dropped by magnitude; 0 = dense", 0.0,
                  0.95, {}}},
      // Plain dtypes only: the weights are transposed into F32 at load, and a block-quantised
      // matrix would have to be re-quantised along the other axis, which is a different model.
      .caps = {.weight_dtypes = {DType::F32, DType::F16, DType::BF16}, .exact = false},
      .rank = 0,  // never chosen unless a config names it
      .supports = supports,
      .make_stage = [](const semline::StageContext& ctx) { return std::make_unique<SparseFfn>(ctx); },
  });
}

}  // namespace

#ifndef SPARSE_PLUGIN_VERSION
#define SPARSE_PLUGIN_VERSION "1.0.0"
#endif

SEMLINE_PLUGIN("ffn-sparse", SPARSE_PLUGIN_VERSION,
               "ffn/sparse on cpu: SwiGLU with training-free activation sparsity (TEAL-style)", register_all)
