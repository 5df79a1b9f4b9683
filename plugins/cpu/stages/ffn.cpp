// ffn/dense: out += down(h) with
//   h = silu(gate x) * (up x)     when the station has a gate (SwiGLU, llama), or
//   h = gelu(up x)                without one (the plain MLP of GPT-2; exact or tanh GELU, as the
//                                 model says), every map with an optional bias.
//
// Gate and up run in one dispatch; each chunk of their rows finishes with the activation on its
// columns and, when W_down is block-quantised, quantises them, so the down projection follows
// with no pass in between.
#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class FfnDense final : public Stage {
 public:
  explicit FfnDense(const StageContext& ctx)
      : be_(cpu_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    n_embd_ = hp.n_embd;
    n_ff_ = hp.n_ff;
    gated_ = is_bound(ctx, "gate");
    act_ = hp.ffn_act;
    if (gated_) {
      gate_ = Linear::bind(ctx, "gate", n_embd_, n_ff_, "(n_embd, n_ff)");
      gate_.bind_bias(ctx, "gate_bias");
    }
    up_ = Linear::bind(ctx, "up", n_embd_, n_ff_, "(n_embd, n_ff)");
    up_.bind_bias(ctx, "up_bias");
    down_ = Linear::bind(ctx, "down", n_ff_, n_embd_, "(n_ff, n_embd)");
    down_.bind_bias(ctx, "down_bias");
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    const int64_t m = max_tokens_;
    if (gated_) gate_out_ = layout_.add(static_cast<size_t>(m * n_ff_) * 4);
    up_out_ = layout_.add(static_cast<size_t>(m * n_ff_) * 4);
    if (gate_.quantized() || up_.quantized()) xq_.plan(layout_, m, n_embd_);
    if (down_.quantized()) hq_.plan(layout_, m, n_ff_);
    be_.workspace().reserve(layout_.total());
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens;
    if (m > max_tokens_)
      throw Error(label_ + ": batch of " + std::to_string(m) + " tokens exceeds max_batch_tokens " +
                  std::to_string(max_tokens_));
    const Act x = activation(in, n_embd_, m, "input", label_);
    const Act y = activation(out, n_embd_, m, "output", label_);
    if (m == 0) return;
    Workspace::Lease lease(be_.workspace());
    char* ws = be_.workspace().data();
    float* u = reinterpret_cast<float*>(ws + up_out_);
    // h is written over the gate rows (SwiGLU) or the up rows (GELU).
    float* h = gated_ ? reinterpret_cast<float*>(ws + gate_out_) : u;

    QRows xq{}, hq{};
    Rows xin{x.p, x.stride, nullptr};
    if (gate_.quantized() || up_.quantized()) {
      xq = xq_.at(ws);
      quantize_rows(be_, x.p, x.stride, m, n_embd_, xq);
      xin.q = &xq;
    }
    if (down_.quantized()) hq = hq_.at(ws);
    const Kernels& kern = be_.kernels();
    const bool quantize_h = down_.quantized();
    auto gelu = act_ == Activation::Gelu ? kern.gelu : kern.gelu_tanh;
    const MatOp up{&up_, xin, u, n_ff_, false};
    const MatOp ops[2] = {up, {&gate_, xin, h, n_ff_, false}};
    run_matmuls_then(be_, gated_ ? ops : &up, gated_ ? 2 : 1, m, [&](int64_t j0, int64_t j1) {
      for (int64_t r = 0; r < m; ++r) {
        float* hr = h + r * n_ff_ + j0;
        if (gated_) kern.silu_mul(hr, u + r * n_ff_ + j0, hr, j1 - j0);
        else gelu(hr, hr, j1 - j0);
        if (quantize_h)
          kern.quantize_q8(hr, j1 - j0, hq.q + r * hq.q_stride + j0, hq.d + r * hq.b_stride + j0 / 32,
                           hq.s + r * hq.b_stride + j0 / 32);
      }
    });
    const MatOp down{&down_, Rows{h, n_ff_, quantize_h ? &hq : nullptr}, y.p, y.stride, true};
    run_matmuls(be_, &down, 1, m);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, maps = gated_ ? 3.0 : 2.0;
    const double flops = 2.0 * m * maps * static_cast<double>(n_embd_) * n_ff_ + (gated_ ? 6.0 : 12.0) * m * n_ff_;
    const double bytes = gate_.bytes() + up_.bytes() + down_.bytes() + m * (12.0 * n_embd_ + 4.0 * (maps + 1) * n_ff_);
    return {flops, bytes};
  }

 private:
  CpuBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_ = 0, n_ff_ = 0;
  bool gated_ = false;
  Activation act_ = Activation::Silu;  // of the ungated MLP: Gelu or GeluTanh
  Linear gate_, up_, down_;  // [n_ff][n_embd] (gate unbound without one), [n_ff][n_embd], [n_embd][n_ff]
  ScratchLayout layout_;
  size_t gate_out_ = 0, up_out_ = 0;  // [max_tokens][n_ff] floats each; h is written over one of them
  QRowsLayout xq_, hq_;               // quantised input rows, quantised h rows
};

}  // namespace

std::vector<std::string> ffn_supports(const StageContext& ctx) {
  return stations::ffn_dense_supported(ctx, "cpu");
}

std::unique_ptr<Stage> make_ffn_dense(const StageContext& ctx) { return std::make_unique<FfnDense>(ctx); }

}  // namespace semline::cpu
