// ffn/dense (SwiGLU): out += W_down (silu(W_gate x) * (W_up x)). Gate and up run side by side
// into scratch, the gate kernel combines them in place, and the down projection adds into out.
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

class FfnDense final : public Stage {
 public:
  explicit FfnDense(const StageContext& ctx)
      : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    n_embd_ = hp.n_embd;
    n_ff_ = hp.n_ff;
    gate_ = Linear(be_, bind_weight(ctx, "gate", n_embd_, n_ff_, "(n_embd, n_ff)"));
    up_ = Linear(be_, bind_weight(ctx, "up", n_embd_, n_ff_, "(n_embd, n_ff)"));
    down_ = Linear(be_, bind_weight(ctx, "down", n_ff_, n_embd_, "(n_ff, n_embd)"));
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    g_ = layout_.add_words(static_cast<size_t>(max_tokens_ * n_ff_));
    u_ = layout_.add_words(static_cast<size_t>(max_tokens_ * n_ff_));
    be_.workspace().reserve(layout_.bytes());
    swiglu_ = &be_.kernels().get(ShaderId::Swiglu, {256});
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
    const DevRows g{&ws, g_, u32(n_ff_)}, u{&ws, u_, u32(n_ff_)};
    s.begin_concurrent();
    gate_.run(be_, x, g, m, false);
    up_.run(be_, x, u, m, false);
    s.end_concurrent();
    const uint64_t n = static_cast<uint64_t>(m * n_ff_);
    SwigluPush p{g_, u_, static_cast<uint32_t>(n)};
    be_.dispatch(*swiglu_, {&ws}, &p, sizeof p, (n + 255) / 256);
    down_.run(be_, g, y, m, true);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens;
    const double flops = 2.0 * m * 3.0 * static_cast<double>(n_embd_) * n_ff_ + 6.0 * m * n_ff_;
    const double bytes = gate_.bytes() + up_.bytes() + down_.bytes() + m * (12.0 * n_embd_ + 16.0 * n_ff_);
    return {flops, bytes};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_ = 0, n_ff_ = 0;
  Linear gate_, up_, down_;
  ScratchLayout layout_;
  uint32_t g_ = 0, u_ = 0;  // [max_tokens][n_ff] floats each; g then holds silu(g) * u
  const Kernel* swiglu_ = nullptr;
};

}  // namespace

std::vector<std::string> ffn_supports(const StageContext& ctx) {
  std::vector<std::string> why = weights_supported(ctx);
  if (ctx.hp && ctx.hp->n_expert > 0) {
    why.push_back("the model has " + std::to_string(ctx.hp->n_expert) +
                  " experts per layer; ffn/dense computes one feed-forward network (vulkan has no MoE variant)");
    return why;
  }
  if (ctx.hp && ctx.hp->ffn_act != Activation::Silu)
    why.push_back("the model's feed-forward activation is GELU; the vulkan ffn runs SwiGLU only");
  // The template binds the dense weights as optional (MoE models have none).
  if (ctx.model)
    for (const char* role : {"gate", "up", "down"})
      if (!ctx.has_weight(role))
        why.push_back(std::string("the model has no '") + role + "' weight for this station (the vulkan ffn runs SwiGLU: gate, up and down)");
  refuse_roles(ctx, {"gate_bias", "up_bias", "down_bias"}, "a projection bias", why);
  return why;
}

std::unique_ptr<Stage> make_ffn_dense(const StageContext& ctx) { return std::make_unique<FfnDense>(ctx); }

}  // namespace semline::vk
