// ffn/dense: out += down(h) (+ b_down) with
//   h = silu(gate x + b_gate) * (up x + b_up)   when the station has a gate (SwiGLU, llama), or
//   h = gelu(up x + b_up)                       without one (GPT-2's MLP; exact or tanh GELU, as
//                                               the model says), every bias optional.
// Gate and up run side by side into scratch, the activation kernel makes h in place, and the
// down projection adds into out.
#include <semline/error.h>

#include "backend/workspace.h"
#include "stages/common.h"
#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

struct SwigluPush {
  uint32_t g_off, u_off, n;
};
struct GeluPush {
  uint32_t off, n;
};

class FfnDense final : public Stage {
 public:
  explicit FfnDense(const StageContext& ctx)
      : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    n_embd_ = hp.n_embd;
    n_ff_ = hp.n_ff;
    gated_ = is_bound(ctx, "gate");
    if (gated_)
      gate_ = Linear(be_, bind_weight(ctx, "gate", n_embd_, n_ff_, "(n_embd, n_ff)"), bind_bias(ctx, "gate_bias", n_ff_));
    up_ = Linear(be_, bind_weight(ctx, "up", n_embd_, n_ff_, "(n_embd, n_ff)"), bind_bias(ctx, "up_bias", n_ff_));
    down_ = Linear(be_, bind_weight(ctx, "down", n_ff_, n_embd_, "(n_ff, n_embd)"), bind_bias(ctx, "down_bias", n_embd_));
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    if (gated_) g_ = layout_.add_words(static_cast<size_t>(max_tokens_ * n_ff_));
    u_ = layout_.add_words(static_cast<size_t>(max_tokens_ * n_ff_));
    be_.workspace().reserve(layout_.bytes());
    if (gated_) act_ = &be_.kernels().get(ShaderId::Swiglu, {256});
    else act_ = &be_.kernels().get(ShaderId::Gelu, {256, hp.ffn_act == Activation::GeluTanh ? 1u : 0u});
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens;
    if (m > max_tokens_)
      throw Error(label_ + ": batch of " + std::to_string(m) + " tokens exceeds max_batch_tokens " +
                  std::to_string(max_tokens_));
    VulkanStream& s = be_.stream_of(step.stream);
    const DevRows x = activation(be_, in, n_embd_, m, "input", label_);
    const DevRows y = activation(be_, out, n_embd_, m, "output", label_);
    if (m == 0) return;
    const GpuBuffer& ws = be_.workspace().buffer();
    const DevRows u{&ws, u_, u32(n_ff_)};
    const uint64_t n = static_cast<uint64_t>(m * n_ff_);
    if (gated_) {
      const DevRows g{&ws, g_, u32(n_ff_)};
      s.begin_concurrent();
      gate_.run(be_, x, g, m, false);
      up_.run(be_, x, u, m, false);
      s.end_concurrent();
      SwigluPush p{g_, u_, static_cast<uint32_t>(n)};
      be_.dispatch(*act_, {&ws}, &p, sizeof p, (n + 255) / 256);
      down_.run(be_, g, y, m, true);
    } else {
      up_.run(be_, x, u, m, false);
      GeluPush p{u_, static_cast<uint32_t>(n)};
      be_.dispatch(*act_, {&ws}, &p, sizeof p, (n + 255) / 256);
      down_.run(be_, u, y, m, true);
    }
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, maps = gated_ ? 3.0 : 2.0;
    const double flops = 2.0 * m * maps * static_cast<double>(n_embd_) * n_ff_ + (gated_ ? 6.0 : 12.0) * m * n_ff_;
    const double bytes = gate_.bytes() + up_.bytes() + down_.bytes() +
                         m * (12.0 * n_embd_ + 4.0 * (maps + 1) * n_ff_);
    return {flops, bytes};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_ = 0, n_ff_ = 0;
  bool gated_ = false;
  Linear gate_, up_, down_;  // [n_ff][n_embd] (gate unbound without one), [n_ff][n_embd], [n_embd][n_ff]
  ScratchLayout layout_;
  uint32_t g_ = 0, u_ = 0;  // [max_tokens][n_ff] floats each (g only with a gate); h is written over g or u
  const Kernel* act_ = nullptr;  // swiglu (h = silu(g) * u into g) or gelu (h = gelu(u) into u)
};

}  // namespace

std::vector<std::string> ffn_supports(const StageContext& ctx) {
  return stations::ffn_dense_supported(ctx, "vulkan");
}

std::unique_ptr<Stage> make_ffn_dense(const StageContext& ctx) { return std::make_unique<FfnDense>(ctx); }

}  // namespace semline::vk
