// ffn/dense: out += down(h) (+ b_down) with
//   h = act(gate x + b_gate) * (up x + b_up)    when the station has a gate: silu (SwiGLU, llama;
//                                               Phi-3's fused gate_up: gate rows first, then up)
//                                               or the model's GELU (GeGLU, Gemma), or
//   h = gelu(up x + b_up)                       without one (GPT-2's MLP; exact or tanh GELU, as
//                                               the model says), every bias optional.
// Gate, up and the activation are one kernel (a backend fuses the activation into the products'
// epilogue or runs it after them); the down projection adds into the residual stream (or, ahead
// of a post norm, writes out).
#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class FfnDense final : public Station {
 public:
  FfnDense(const StageContext& ctx, Kernels& k) : Station(ctx, k) {
    takes_out_modes_ = true;
    if (is_bound(ctx, "gate_up")) {
      const int64_t d = hp_.n_embd, f = hp_.n_ff;
      gate_ = bind_linear_part(ctx, k_, "gate_up", d, 2 * f, 0, f, "(n_embd, 2 n_ff)", max_tokens_);
      up_ = bind_linear_part(ctx, k_, "gate_up", d, 2 * f, f, f, "(n_embd, 2 n_ff)", max_tokens_);
    } else {
      if (is_bound(ctx, "gate"))
        gate_ = bind_linear(ctx, k_, "gate", hp_.n_embd, hp_.n_ff, "(n_embd, n_ff)", "gate_bias", max_tokens_);
      up_ = bind_linear(ctx, k_, "up", hp_.n_embd, hp_.n_ff, "(n_embd, n_ff)", "up_bias", max_tokens_);
    }
    down_ = bind_linear(ctx, k_, "down", hp_.n_ff, hp_.n_embd, "(n_ff, n_embd)", "down_bias", max_tokens_);
    h_ = plan_.add_rows(hp_.n_ff, max_tokens_);
    tmp_ = plan_.add_rows(hp_.n_ff, max_tokens_);
    k_.reserve_scratch(plan_.total());
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens;
    const auto [x, y] = begin_rows(step, in, out, hp_.n_embd);
    if (m == 0) return;
    const Tensor h = k_.scratch_rows(h_, hp_.n_ff, m), tmp = k_.scratch_rows(tmp_, hp_.n_ff, m);
    // The model's activation: silu or GELU gated (SwiGLU, GeGLU); GELU ungated (the MLP).
    k_.linear_act(step, x, gate_.get(), *up_, hp_.ffn_act, h, tmp, m, down_.get());
    const Product residual{down_.get(), y, adds(step, true)};  // out += down(h)
    k_.linear(step, h, {&residual, 1}, m);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, maps = gate_ ? 3.0 : 2.0;
    const double d = static_cast<double>(hp_.n_embd), f = static_cast<double>(hp_.n_ff);
    const double flops = 2.0 * m * maps * d * f + (gate_ ? 6.0 : 12.0) * m * f;
    const double bytes =
        (gate_ ? gate_->bytes() : 0.0) + up_->bytes() + down_->bytes() + m * (12.0 * d + 4.0 * (maps + 1) * f);
    return {flops, bytes};
  }

 private:
  std::unique_ptr<LinearWeight> gate_, up_, down_;  // gate null without one
  size_t h_ = 0, tmp_ = 0;  // [max_tokens][n_ff] floats each
};

}  // namespace

std::unique_ptr<Stage> make_ffn_dense(const StageContext& ctx, Kernels& k) { return std::make_unique<FfnDense>(ctx, k); }

}  // namespace semline::stations
