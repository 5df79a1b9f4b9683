// ffn/moe: a mixture of SwiGLU experts (Mixtral).
//
//   logits = W_router x  (ffn_gate_inp, n_embd -> n_expert)
//   p = softmax(logits) over all experts; the n_expert_used largest are chosen (equal logits: the
//   lower expert index first) with weights w_k = p_k / sum of the chosen p, which is the softmax
//   of the chosen logits alone (Jamba, HParams::extra expert_weights_softmax: w_k = p_k);
//   out += sum_k w_k E_k(x),  E(x) = down(silu(gate x) * up x) with the expert's slices of the
//   stacked ffn_{gate,up,down}_exps tensors.
//
// Expert parallelism (HParams::extra expert_first and expert_count, set for one rank of a split
// line): the router still scores every expert and each token keeps its n_used best with the same
// weights, but only this rank's experts [first, first + count) are bound and computed; the ranks'
// partial sums meet in the all-reduce after the sub-layer.
//
// A step: the router product, the routing (each token's experts, the (token, expert) slots
// grouped by expert), gate and up for every slot with the activation, down for every slot, and
// the weighted slots added into out. How a backend groups the products (gathered rows per expert
// on the cpu, expert-indexed products on vulkan) is its own; an expert no token chose is never
// read by either.
#include <algorithm>

#include <semline/error.h>

#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class FfnMoe final : public Station {
 public:
  FfnMoe(const StageContext& ctx, Kernels& k) : Station(ctx, k) {
    if (hp_.n_expert < 1 || hp_.n_expert_used < 1 || hp_.n_expert_used > hp_.n_expert)
      throw Error(label_ + ": n_expert " + std::to_string(hp_.n_expert) + " and n_expert_used " +
                  std::to_string(hp_.n_expert_used) + " must satisfy 1 <= n_expert_used <= n_expert");
    first_ = static_cast<int64_t>(hp_.extra_or("expert_first", 0));
    count_ = static_cast<int64_t>(hp_.extra_or("expert_count", static_cast<double>(hp_.n_expert)));
    if (first_ < 0 || count_ < 1 || first_ + count_ > hp_.n_expert)
      throw Error(label_ + ": experts " + std::to_string(first_) + ".." + std::to_string(first_ + count_ - 1) +
                  " asked of a mixture of " + std::to_string(hp_.n_expert));
    const int64_t slots = static_cast<int64_t>(max_tokens_) * hp_.n_expert_used;
    router_ = bind_linear(ctx, k_, "router", hp_.n_embd, hp_.n_expert, "(n_embd, n_expert)", nullptr, max_tokens_);
    gate_ = experts(ctx, "gate_exps", hp_.n_embd, hp_.n_ff, "(n_embd, n_ff, n_expert)", slots);
    up_ = experts(ctx, "up_exps", hp_.n_embd, hp_.n_ff, "(n_embd, n_ff, n_expert)", slots);
    down_ = experts(ctx, "down_exps", hp_.n_ff, hp_.n_embd, "(n_ff, n_embd, n_expert)", slots);
    routing_ = k_.bind_routing(label_, hp_.n_expert, hp_.n_expert_used, max_tokens_,
                               hp_.extra_or("expert_weights_softmax", 0) == 0, first_, count_);
    logits_ = plan_.add_rows(hp_.n_expert, max_tokens_);
    h_ = plan_.add_rows(hp_.n_ff, slots);
    tmp_ = plan_.add_rows(hp_.n_ff, slots);
    d_ = plan_.add_rows(hp_.n_embd, slots);
    k_.reserve_scratch(plan_.total());
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t m = b.n_tokens;
    const auto [x, y] = begin_rows(step, in, out, hp_.n_embd);
    if (m == 0) return;
    const Tensor logits = k_.scratch_rows(logits_, hp_.n_expert, m);
    const Product router{router_.get(), logits, false};
    k_.linear(step, x, {&router, 1}, m);
    k_.route(step, logits, m, *routing_);
    routed_step_ = b.step;
    routed_tokens_ = m;

    const int64_t slots = m * hp_.n_expert_used;
    const Tensor h = k_.scratch_rows(h_, hp_.n_ff, slots), d = k_.scratch_rows(d_, hp_.n_embd, slots);
    k_.expert_act(step, x, *gate_, *up_, *routing_, h, k_.scratch_rows(tmp_, hp_.n_ff, slots), down_.get());
    k_.expert_linear(step, h, *down_, *routing_, d);
    k_.expert_combine(step, d, *routing_, y);  // out += sum_k w_k E_k(x): the residual add
  }

  // Work from the routing of the step when the backend sees it and the batch is the one just run
  // (the same Batch::step and size): each chosen expert's three matrices are read once. Otherwise
  // the experts are counted at the bound min(n_expert, slots), exact for a decode step (its n_used
  // experts are distinct). Every (token, expert) slot costs one SwiGLU.
  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, slots = m * static_cast<double>(hp_.n_expert_used);
    const int64_t seen = routed_tokens_ == b.n_tokens && routed_step_ == b.step ? k_.experts_used(*routing_) : -1;
    const double used = seen >= 0 ? static_cast<double>(seen) : std::min(static_cast<double>(count_), slots);
    const double dm = static_cast<double>(hp_.n_embd), f = static_cast<double>(hp_.n_ff);
    const double flops = 2.0 * m * dm * static_cast<double>(hp_.n_expert) + slots * (6.0 * dm * f + 6.0 * f + 2.0 * dm);
    const double expert_bytes = gate_->bytes() + up_->bytes() + down_->bytes();
    const double bytes = router_->bytes() + used * expert_bytes + m * 8.0 * dm + slots * (12.0 * dm + 16.0 * f);
    return {flops, bytes};
  }

 private:
  std::unique_ptr<ExpertWeights> experts(const StageContext& ctx, const char* role, int64_t n_in, int64_t n_out,
                                         const char* dims, int64_t max_rows) {
    return k_.bind_experts(ctx, role, weight_view(ctx, role, {n_in, n_out, count_}, dims), max_rows);
  }

  std::unique_ptr<LinearWeight> router_;                // [n_expert][n_embd]
  std::unique_ptr<ExpertWeights> gate_, up_, down_;     // [n_expert][n_ff][n_embd] x2, [n_expert][n_embd][n_ff]
  std::unique_ptr<ExpertRouting> routing_;
  // Router logits [max_tokens][n_expert]; per slot (max_tokens * n_used rows): h (silu(gate) * up)
  // and tmp [n_ff], down's output [n_embd].
  size_t logits_ = 0, h_ = 0, tmp_ = 0, d_ = 0;
  int64_t first_ = 0, count_ = 0;  // the experts computed here
  uint64_t routed_step_ = 0;
  int64_t routed_tokens_ = -1;
};

}  // namespace

std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx, Kernels& k) { return std::make_unique<FfnMoe>(ctx, k); }

}  // namespace semline::stations
