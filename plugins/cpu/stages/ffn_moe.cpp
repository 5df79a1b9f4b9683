// ffn/moe: a mixture of SwiGLU experts (Mixtral).
//
//   logits = W_router x  (ffn_gate_inp, n_embd -> n_expert)
//   p = softmax(logits) over all experts; the n_expert_used largest are chosen (equal logits: the
//   lower expert index first) with weights w_k = p_k / sum of the chosen p, which is the softmax
//   of the chosen logits alone;  out += sum_k w_k E_k(x),  E(x) = down(silu(gate x) * up x) with
//   the expert's slices of the stacked ffn_{gate,up,down}_exps tensors.
//
// A step routes every token first and then groups the tokens by expert (a counting sort, tokens
// in batch order within an expert): each expert some token chose runs one matrix-matrix product
// per projection over its tokens' gathered rows, and an expert no token chose is never read.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class FfnMoe final : public Stage {
 public:
  explicit FfnMoe(const StageContext& ctx)
      : be_(cpu_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    n_embd_ = hp.n_embd;
    n_ff_ = hp.n_ff;
    n_expert_ = hp.n_expert;
    n_used_ = hp.n_expert_used;
    if (n_expert_ < 1 || n_used_ < 1 || n_used_ > n_expert_)
      throw Error(label_ + ": n_expert " + std::to_string(n_expert_) + " and n_expert_used " +
                  std::to_string(n_used_) + " must satisfy 1 <= n_expert_used <= n_expert");
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    router_ = Linear::bind(ctx, "router", n_embd_, n_expert_, "(n_embd, n_expert)");
    gate_ = Linear::bind_experts(ctx, "gate_exps", n_embd_, n_ff_, n_expert_, "(n_embd, n_ff, n_expert)");
    up_ = Linear::bind_experts(ctx, "up_exps", n_embd_, n_ff_, n_expert_, "(n_embd, n_ff, n_expert)");
    down_ = Linear::bind_experts(ctx, "down_exps", n_ff_, n_embd_, n_expert_, "(n_ff, n_embd, n_expert)");

    const int64_t m = max_tokens_, slots = m * n_used_;
    logits_ = layout_.add(static_cast<size_t>(m * n_expert_) * 4);
    rows_ = layout_.add(static_cast<size_t>(slots * n_embd_) * 4);
    gate_out_ = layout_.add(static_cast<size_t>(m * n_ff_) * 4);
    up_out_ = layout_.add(static_cast<size_t>(m * n_ff_) * 4);
    down_out_ = layout_.add(static_cast<size_t>(m * n_embd_) * 4);
    if (router_.quantized()) xq_.plan(layout_, m, n_embd_);
    if (gate_[0].quantized() || up_[0].quantized()) rq_.plan(layout_, slots, n_embd_);
    if (down_[0].quantized()) hq_.plan(layout_, m, n_ff_);
    be_.workspace().reserve(layout_.total());
    start_.resize(static_cast<size_t>(n_expert_ + 1));
    next_.resize(static_cast<size_t>(n_expert_));
    token_.resize(static_cast<size_t>(slots));
    weight_.resize(static_cast<size_t>(slots));
    chosen_.resize(static_cast<size_t>(slots));
    chosen_w_.resize(static_cast<size_t>(slots));
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t m = b.n_tokens;
    if (m > max_tokens_)
      throw Error(label_ + ": batch of " + std::to_string(m) + " tokens exceeds max_batch_tokens " +
                  std::to_string(max_tokens_));
    const Act x = activation(in, n_embd_, m, "input", label_);
    const Act y = activation(out, n_embd_, m, "output", label_);
    if (m == 0) return;
    Workspace::Lease lease(be_.workspace());
    char* ws = be_.workspace().data();

    float* logits = reinterpret_cast<float*>(ws + logits_);
    QRows xq{};
    Rows xin{x.p, x.stride, nullptr};
    if (router_.quantized()) {
      xq = xq_.at(ws);
      quantize_rows(be_, x.p, x.stride, m, n_embd_, xq);
      xin.q = &xq;
    }
    const MatOp router{&router_, xin, logits, n_expert_, false};
    run_matmuls(be_, &router, 1, m);
    route(logits, m);
    routed_step_ = b.step;
    routed_tokens_ = m;

    // The rows of each expert's tokens, gathered so that one product covers them.
    const int64_t slots = m * n_used_;
    float* rows = reinterpret_cast<float*>(ws + rows_);
    const int64_t grain = std::max<int64_t>(1, 16384 / n_embd_);
    be_.pool().run(slots, grain, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(rows + i * n_embd_, x.p + token_[i] * x.stride, static_cast<size_t>(n_embd_) * 4);
    });
    QRows rq{};
    const bool quantize_rows_in = gate_[0].quantized() || up_[0].quantized();
    if (quantize_rows_in) {
      rq = rq_.at(ws);
      quantize_rows(be_, rows, n_embd_, slots, n_embd_, rq);
    }
    QRows hq = down_[0].quantized() ? hq_.at(ws) : QRows{};
    float* g = reinterpret_cast<float*>(ws + gate_out_);
    float* u = reinterpret_cast<float*>(ws + up_out_);
    float* d = reinterpret_cast<float*>(ws + down_out_);
    const Kernels& kern = be_.kernels();
    for (int64_t e = 0; e < n_expert_; ++e) {
      const int64_t first = start_[e], n = start_[e + 1] - first;
      if (n == 0) continue;  // no token chose it: its weights stay unread
      QRows rqe = rq;
      if (quantize_rows_in) {
        rqe.q += first * rq.q_stride;
        rqe.d += first * rq.b_stride;
        rqe.s += first * rq.b_stride;
      }
      const Rows ein{rows + first * n_embd_, n_embd_, quantize_rows_in ? &rqe : nullptr};
      const MatOp gate_up[2] = {{&gate_[e], ein, g, n_ff_, false}, {&up_[e], ein, u, n_ff_, false}};
      run_matmuls_then(be_, gate_up, 2, n, [&](int64_t j0, int64_t j1) {
        for (int64_t r = 0; r < n; ++r) {
          float* gr = g + r * n_ff_;
          kern.silu_mul(gr + j0, u + r * n_ff_ + j0, gr + j0, j1 - j0);
          if (hq.q)
            kern.quantize_q8(gr + j0, j1 - j0, hq.q + r * hq.q_stride + j0, hq.d + r * hq.b_stride + j0 / 32,
                             hq.s + r * hq.b_stride + j0 / 32);
        }
      });
      const MatOp down{&down_[e], Rows{g, n_ff_, hq.q ? &hq : nullptr}, d, n_embd_, false};
      run_matmuls(be_, &down, 1, n);
      // Distinct tokens within one expert: the rows of out are updated without overlap.
      be_.pool().run(n, grain, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r)
          kern.axpy_f32(weight_[first + r], d + r * n_embd_, y.p + token_[first + r] * y.stride, n_embd_);
      });
    }
  }

  // Work from the routing of the step: forward() records how many distinct experts the tokens
  // chose, and the pipeline asks for the cost of the batch it has just run (the same Batch::step
  // and size). Each chosen expert's three matrices are read once; every (token, expert) slot costs
  // one SwiGLU. Asked about another batch, the count is its upper bound, min(n_expert, slots).
  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, slots = m * static_cast<double>(n_used_);
    const bool known = routed_tokens_ == b.n_tokens && routed_step_ == b.step;
    const double used = known ? used_experts_ : std::min(static_cast<double>(n_expert_), slots);
    const double d = static_cast<double>(n_embd_), f = static_cast<double>(n_ff_);
    const double flops = 2.0 * m * d * static_cast<double>(n_expert_) + slots * (6.0 * d * f + 6.0 * f + 2.0 * d);
    const double expert_bytes = gate_[0].bytes() + up_[0].bytes() + down_[0].bytes();
    const double bytes = router_.bytes() + used * expert_bytes + m * 8.0 * d + slots * (12.0 * d + 16.0 * f);
    return {flops, bytes};
  }

 private:
  // Chooses n_used experts per token and groups the (token, expert) slots by expert.
  void route(const float* logits, int64_t m) {
    std::fill(start_.begin(), start_.end(), 0);
    for (int64_t t = 0; t < m; ++t) {
      const float* l = logits + t * n_expert_;
      int32_t* pick = chosen_.data() + t * n_used_;
      for (int64_t k = 0; k < n_used_; ++k) {
        // The largest logit not yet chosen; scanning upwards with '>' keeps the lowest index of
        // equal ones. Softmax is monotonic, so this is the order of the probabilities.
        int32_t best = -1;
        for (int32_t e = 0; e < n_expert_; ++e) {
          if (std::find(pick, pick + k, e) != pick + k) continue;
          if (best < 0 || l[e] > l[best]) best = e;
        }
        pick[k] = best;
      }
      // Renormalised over the chosen: exp(l_k - l_top) / sum, in double for the weights' sake.
      double sum = 0;
      double* w = chosen_w_.data() + t * n_used_;
      for (int64_t k = 0; k < n_used_; ++k) sum += w[k] = std::exp(static_cast<double>(l[pick[k]]) - l[pick[0]]);
      for (int64_t k = 0; k < n_used_; ++k) {
        w[k] /= sum;
        ++start_[pick[k] + 1];
      }
    }
    used_experts_ = 0;
    for (int64_t e = 0; e < n_expert_; ++e) {
      used_experts_ += start_[e + 1] > 0;
      start_[e + 1] += start_[e];
    }
    std::copy(start_.begin(), start_.end() - 1, next_.begin());
    for (int64_t t = 0; t < m; ++t)
      for (int64_t k = 0; k < n_used_; ++k) {
        const int32_t slot = next_[chosen_[t * n_used_ + k]]++;
        token_[slot] = static_cast<int32_t>(t);
        weight_[slot] = static_cast<float>(chosen_w_[t * n_used_ + k]);
      }
  }

  CpuBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_ = 0, n_ff_ = 0, n_expert_ = 0, n_used_ = 0;
  Linear router_;                        // [n_expert][n_embd]
  std::vector<Linear> gate_, up_, down_;  // per expert: [n_ff][n_embd], [n_ff][n_embd], [n_embd][n_ff]
  ScratchLayout layout_;
  // Router logits [max_tokens][n_expert]; gathered rows [max_tokens * n_used][n_embd]; one
  // expert's gate (then silu * up), up and down outputs, [max_tokens][n_ff] / [max_tokens][n_embd].
  size_t logits_ = 0, rows_ = 0, gate_out_ = 0, up_out_ = 0, down_out_ = 0;
  QRowsLayout xq_, rq_, hq_;  // quantised input rows (router), gathered rows (experts), silu * up rows
  // The routing of the last step, sized once for max_tokens: slots grouped by expert (expert e
  // owns slots [start[e], start[e+1]), next[e] is the next one to fill) with their token and
  // weight; per token its chosen experts and their weights in rank order.
  std::vector<int32_t> start_, next_, token_, chosen_;
  std::vector<float> weight_;
  std::vector<double> chosen_w_;
  int32_t used_experts_ = 0;
  uint64_t routed_step_ = 0;
  int64_t routed_tokens_ = -1;
};

}  // namespace

std::vector<std::string> ffn_moe_supports(const StageContext& ctx) {
  return stations::ffn_moe_supported(ctx, "cpu");
}

std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx) { return std::make_unique<FfnMoe>(ctx); }

}  // namespace semline::cpu
