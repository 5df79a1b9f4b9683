// ffn/moe: a mixture of SwiGLU experts (Mixtral), all on the device.
//
//   logits = W_router x  (ffn_gate_inp, n_embd -> n_expert)
//   p = softmax(logits) over all experts; the n_expert_used largest are chosen (equal logits: the
//   lower expert index first) with weights w_k = p_k / sum of the chosen p, which is the softmax
//   of the chosen logits alone;  out += sum_k w_k E_k(x),  E(x) = down(silu(gate x) * up x) with
//   the expert's slices of the stacked ffn_{gate,up,down}_exps tensors.
//
// A step: the router product; moe_route.comp picks each token's experts and groups the (token,
// expert) slots by expert, in one workgroup; gate and up run as expert-indexed products
// (ExpertLinear) from each slot's token row into the slot's row, the SwiGLU kernel combines them,
// down maps each slot's row with its expert's matrix, and moe_combine.comp adds the weighted
// slots into out. Nothing goes back to the host, so a decode step records the same commands every
// token and its command buffer is replayed.
//
// What a step costs: decode (at most 8 slots) runs one matrix-vector product per slot and reads
// only the chosen experts' matrices. Prefill dispatches tiles for every expert and every 64 tokens
// (an expert holds at most one slot per token); a tile past its expert's slots returns before
// reading any weight, so each chosen expert's matrices are read once per 64 of its slots, and an
// expert no token chose is not read at all. The routing workgroup reads the step's ids once per
// expert (n_expert x slots words), which is small next to the products.
#include <algorithm>

#include <semline/error.h>

#include "backend/vulkan_backend.h"
#include "backend/workspace.h"
#include "stages/common.h"
#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

struct RoutePush {
  uint32_t logits_off, n_tokens, n_expert, n_used;
  uint32_t ids_off, w_off, cnt_off, ofs_off, list_off;
};
struct SwigluPush {
  uint32_t g_off, u_off, n;
};
struct CombinePush {
  uint32_t d_off, w_off, y_off, y_stride, n, n_tokens, n_used;
};

class FfnMoe final : public Stage {
 public:
  explicit FfnMoe(const StageContext& ctx)
      : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    n_embd_ = hp.n_embd;
    n_ff_ = hp.n_ff;
    n_expert_ = hp.n_expert;
    n_used_ = hp.n_expert_used;
    if (n_expert_ < 1 || n_used_ < 1 || n_used_ > n_expert_)
      throw Error(label_ + ": n_expert " + std::to_string(n_expert_) + " and n_expert_used " +
                  std::to_string(n_used_) + " must satisfy 1 <= n_expert_used <= n_expert");
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    router_ = Linear(be_, bind_weight(ctx, "router", n_embd_, n_expert_, "(n_embd, n_expert)"));
    gate_ = ExpertLinear(be_, bind_experts(ctx, "gate_exps", n_embd_, n_ff_, n_expert_, "(n_embd, n_ff, n_expert)"));
    up_ = ExpertLinear(be_, bind_experts(ctx, "up_exps", n_embd_, n_ff_, n_expert_, "(n_embd, n_ff, n_expert)"));
    down_ = ExpertLinear(be_, bind_experts(ctx, "down_exps", n_ff_, n_embd_, n_expert_, "(n_ff, n_embd, n_expert)"));

    const size_t m = static_cast<size_t>(max_tokens_), slots = m * static_cast<size_t>(n_used_);
    logits_ = layout_.add_words(m * static_cast<size_t>(n_expert_));
    g_ = layout_.add_words(slots * static_cast<size_t>(n_ff_));
    u_ = layout_.add_words(slots * static_cast<size_t>(n_ff_));
    d_ = layout_.add_words(slots * static_cast<size_t>(n_embd_));
    be_.workspace().reserve(layout_.bytes());

    // The routing: ids and weights per slot, counts and offsets per expert, slots by expert.
    routing_.ids = 0;
    routing_.weights = u32(slots);
    routing_.counts = u32(2 * slots);
    routing_.offsets = routing_.counts + u32(n_expert_);
    routing_.lists = routing_.offsets + u32(n_expert_);
    routing_.used = n_used_;
    const size_t words = 3 * slots + 2 * static_cast<size_t>(n_expert_);
    be_.check_binding_size(words * 4, label_ + ": the routing of max_batch_tokens tokens");
    route_buf_ = std::make_unique<VulkanBuffer>(be_, words * 4);
    routing_.buf = &route_buf_->gpu();

    route_ = &be_.kernels().get(ShaderId::MoeRoute, {64});
    swiglu_ = &be_.kernels().get(ShaderId::Swiglu, {256});
    combine_ = &be_.kernels().get(ShaderId::MoeCombine, {256});
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
    const GpuBuffer& rb = *routing_.buf;
    Routing r = routing_;
    r.tokens = m;

    router_.run(be_, x, DevRows{&ws, logits_, u32(n_expert_)}, m, false);
    const RoutePush rp{logits_, u32(m),    u32(n_expert_), u32(n_used_),
                       r.ids,   r.weights, r.counts,       r.offsets, r.lists};
    be_.dispatch(*route_, {&ws, &rb}, &rp, sizeof rp, 1);

    const DevRows g{&ws, g_, u32(n_ff_)}, u{&ws, u_, u32(n_ff_)}, d{&ws, d_, u32(n_embd_)};
    s.begin_concurrent();
    gate_.run(be_, x, g, r, true);
    up_.run(be_, x, u, r, true);
    s.end_concurrent();
    const uint64_t n = static_cast<uint64_t>(m * n_used_ * n_ff_);
    const SwigluPush sp{g_, u_, static_cast<uint32_t>(n)};
    be_.dispatch(*swiglu_, {&ws}, &sp, sizeof sp, (n + 255) / 256);
    down_.run(be_, g, d, r, false);
    const CombinePush cp{d_, r.weights, y.off, y.stride, u32(n_embd_), u32(m), u32(n_used_)};
    be_.dispatch(*combine_, {&ws, &rb, y.buf}, &cp, sizeof cp, (static_cast<uint64_t>(m * n_embd_) + 255) / 256);
  }

  // The routing stays on the device, so the experts a step used are not known here: every
  // (token, expert) slot costs one SwiGLU, and the experts' matrices are counted at the bound
  // min(n_expert, slots), which is exact for a decode step (its n_used experts are distinct).
  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, slots = m * static_cast<double>(n_used_);
    const double used = std::min(static_cast<double>(n_expert_), slots);
    const double dm = static_cast<double>(n_embd_), f = static_cast<double>(n_ff_);
    const double flops = 2.0 * m * dm * static_cast<double>(n_expert_) + slots * (6.0 * dm * f + 6.0 * f + 2.0 * dm);
    const double expert_bytes = gate_.weight().bytes() + up_.weight().bytes() + down_.weight().bytes();
    const double bytes = router_.bytes() + used * expert_bytes + m * 8.0 * dm + slots * (12.0 * dm + 16.0 * f);
    return {flops, bytes};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_ = 0, n_ff_ = 0, n_expert_ = 0, n_used_ = 0;
  Linear router_;                    // [n_expert][n_embd]
  ExpertLinear gate_, up_, down_;    // stacks: [n_expert][n_ff][n_embd] twice, [n_expert][n_embd][n_ff]
  ScratchLayout layout_;
  // Words in scratch: router logits [max_tokens][n_expert]; per slot (max_tokens * n_used rows)
  // gate (then silu(gate) * up) [n_ff], up [n_ff] and down [n_embd] outputs.
  uint32_t logits_ = 0, g_ = 0, u_ = 0, d_ = 0;
  std::unique_ptr<VulkanBuffer> route_buf_;  // the routing, sized for max_tokens (moe_route.comp)
  Routing routing_;
  const Kernel* route_ = nullptr;
  const Kernel* swiglu_ = nullptr;
  const Kernel* combine_ = nullptr;
};

}  // namespace

std::vector<std::string> ffn_moe_supports(const StageContext& ctx) {
  return stations::ffn_moe_supported(ctx, "vulkan");
}

std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx) { return std::make_unique<FfnMoe>(ctx); }

}  // namespace semline::vk
