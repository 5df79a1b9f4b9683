// embedding/lookup: out[t] = token_embd[tokens[t]] (+ positions[positions[t]] when the model has
// learned position rows, as GPT-2 does), converted to float: one gather of the token rows, then
// one that adds the position rows; times the model's embedding scale where it has one (Gemma:
// sqrt(n_embd), HParams::extra embedding_scale).
#include <semline/error.h>

#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class EmbeddingLookup final : public Station {
 public:
  EmbeddingLookup(const StageContext& ctx, Kernels& k)
      : Station(ctx, k), scale_(static_cast<float>(hp_.extra_or("embedding_scale", 1.0))) {
    k_.reserve_tokens(max_tokens_);
    table_ = k_.bind_table(ctx, "tokens", weight_view(ctx, "tokens", {hp_.n_embd, hp_.n_vocab}, "(n_embd, n_vocab)"));
    if (is_bound(ctx, "positions")) {
      const Tensor* t = ctx.find_weight("positions");
      const int64_t n_positions = t ? t->ne[1] : 0;
      positions_ = k_.bind_table(ctx, "positions",
                                 weight_view(ctx, "positions", {hp_.n_embd, n_positions}, "(n_embd, n_positions)"));
    }
  }

  void forward(const Tensor&, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    begin(step);
    const Tensor o = activation_rows(k_, out, table_->width, b.n_tokens, "output", label_);
    for (int32_t t = 0; t < b.n_tokens; ++t) {
      if (b.tokens[t] < 0 || b.tokens[t] >= table_->rows)
        throw Error(label_ + ": token id " + std::to_string(b.tokens[t]) + " at batch row " + std::to_string(t) +
                    " is outside the vocabulary [0, " + std::to_string(table_->rows) + ")");
      if (positions_ && (b.positions[t] < 0 || b.positions[t] >= positions_->rows))
        throw Error(label_ + ": position " + std::to_string(b.positions[t]) + " at batch row " + std::to_string(t) +
                    " is past the model's " + std::to_string(positions_->rows) +
                    " learned positions (its context length); the context cannot grow beyond them");
    }
    if (b.n_tokens == 0) return;
    k_.gather_table(step, *table_, BatchIndex::Tokens, o, false);
    if (positions_) k_.gather_table(step, *positions_, BatchIndex::Positions, o, true);
    if (scale_ != 1.0f) k_.scale(step, o, b.n_tokens, scale_);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, n = static_cast<double>(table_->width);
    const double pos = positions_ ? m * (dtype_row_bytes(positions_->dtype, positions_->width) + 8.0 * n) : 0.0;
    return {positions_ ? m * n : 0.0, m * (dtype_row_bytes(table_->dtype, table_->width) + 4.0 * n) + pos};
  }

 private:
  std::unique_ptr<RowTable> table_;      // [n_vocab][n_embd]
  std::unique_ptr<RowTable> positions_;  // [n_positions][n_embd], null without learned positions
  float scale_ = 1.0f;
};

}  // namespace

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx, Kernels& k) {
  return std::make_unique<EmbeddingLookup>(ctx, k);
}

}  // namespace semline::stations
