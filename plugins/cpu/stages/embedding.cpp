// embedding/lookup: out[t] = token_embd[tokens[t]] (+ positions[positions[t]] when the model has
// learned position rows, as GPT-2 does), dequantised to float.
#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class EmbeddingLookup final : public Stage {
 public:
  explicit EmbeddingLookup(const StageContext& ctx)
      : be_(cpu_backend_of(ctx)), label_(station_label(ctx)) {
    const HParams& hp = hparams_of(ctx);
    table_ = Linear::view(ctx, "tokens", hp.n_embd, hp.n_vocab, "(n_embd, n_vocab)");
    if (is_bound(ctx, "positions")) {
      const Tensor t = ctx.weight("positions");
      n_positions_ = t.ne[1];
      // Dequantised once: the table is small (n_ctx_train rows) and every step reads it.
      const Linear p = Linear::view(ctx, "positions", hp.n_embd, n_positions_, "(n_embd, n_positions)");
      positions_.resize(static_cast<size_t>(n_positions_ * hp.n_embd));
      for (int64_t r = 0; r < n_positions_; ++r)
        be_.kernels().dequantize_row(p.dtype, p.data + r * p.row_stride, positions_.data() + r * hp.n_embd, hp.n_embd);
    }
  }

  void forward(const Tensor&, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t n = table_.n_in;
    const Act o = activation(out, n, b.n_tokens, "output", label_);
    for (int32_t t = 0; t < b.n_tokens; ++t) {
      if (b.tokens[t] < 0 || b.tokens[t] >= table_.n_out)
        throw Error(label_ + ": token id " + std::to_string(b.tokens[t]) + " at batch row " +
                    std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(table_.n_out) + ")");
      if (!positions_.empty() && (b.positions[t] < 0 || b.positions[t] >= n_positions_))
        throw Error(label_ + ": position " + std::to_string(b.positions[t]) + " at batch row " + std::to_string(t) +
                    " is past the model's " + std::to_string(n_positions_) +
                    " learned positions (its context length); the context cannot grow beyond them");
    }
    const Kernels& kern = be_.kernels();
    const int64_t grain = n >= 4096 ? 4 : 16;
    be_.pool().run(b.n_tokens, grain, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        float* row = o.p + t * o.stride;
        kern.dequantize_row(table_.dtype, table_.data + b.tokens[t] * table_.row_stride, row, n);
        if (!positions_.empty()) kern.add(positions_.data() + b.positions[t] * n, row, n);
      }
    });
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, n = static_cast<double>(table_.n_in), pos = positions_.empty() ? 0.0 : 1.0;
    return {pos * m * n, m * (dtype_row_bytes(table_.dtype, table_.n_in) + 4.0 * n * (1.0 + pos))};
  }

 private:
  CpuBackend& be_;
  std::string label_;
  Linear table_;                  // [n_vocab][n_embd]
  std::vector<float> positions_;  // [n_positions][n_embd], empty when the model has none
  int64_t n_positions_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx) {
  return std::make_unique<EmbeddingLookup>(ctx);
}

}  // namespace semline::cpu
