// embedding/lookup: out[t] = token_embd[tokens[t]] (+ positions[positions[t]] when the model has
// learned position rows, as GPT-2 does), converted to float on the device: one gather of the
// token rows, then one that adds the position rows, both indexed by the step's uploaded ids.
#include <semline/error.h>

#include "backend/step_data.h"
#include "stages/common.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

class EmbeddingLookup final : public Stage {
 public:
  explicit EmbeddingLookup(const StageContext& ctx)
      : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    table_ = bind_weight(ctx, "tokens", hp.n_embd, hp.n_vocab, "(n_embd, n_vocab)");
    kernel_ = &be_.kernels().get(ShaderId::GetRows, {64, static_cast<uint32_t>(table_.dtype)});
    if (is_bound(ctx, "positions")) {
      const Tensor* t = ctx.find_weight("positions");
      positions_ = bind_weight(ctx, "positions", hp.n_embd, t ? t->ne[1] : 0, "(n_embd, n_positions)");
      pos_kernel_ = &be_.kernels().get(ShaderId::GetRows, {64, static_cast<uint32_t>(positions_.dtype)});
    }
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    be_.step_data().reserve(max_tokens_);
  }

  void forward(const Tensor&, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    if (b.n_tokens > max_tokens_)
      throw Error(label_ + ": batch of " + std::to_string(b.n_tokens) + " tokens exceeds max_batch_tokens " +
                  std::to_string(max_tokens_));
    be_.stream_of(step.stream);
    const DevRows o = activation(be_, out, table_.n_in, b.n_tokens, "output", label_);
    for (int32_t t = 0; t < b.n_tokens; ++t) {
      if (b.tokens[t] < 0 || b.tokens[t] >= table_.n_out)
        throw Error(label_ + ": token id " + std::to_string(b.tokens[t]) + " at batch row " + std::to_string(t) +
                    " is outside the vocabulary [0, " + std::to_string(table_.n_out) + ")");
      if (pos_kernel_ && (b.positions[t] < 0 || b.positions[t] >= positions_.n_out))
        throw Error(label_ + ": position " + std::to_string(b.positions[t]) + " at batch row " + std::to_string(t) +
                    " is past the model's " + std::to_string(positions_.n_out) +
                    " learned positions (its context length); the context cannot grow beyond them");
    }
    if (b.n_tokens == 0) return;
    const StepView& v = be_.step_data().upload(b);
    const GpuBuffer& ints = be_.step_data().ints();
    GetRowsPush p{table_.offset, table_.row_bytes, u32(table_.n_in), v.tokens, o.off, o.stride, u32(b.n_tokens), 0};
    be_.dispatch(*kernel_, {table_.buf, &ints, o.buf}, &p, sizeof p, u32(b.n_tokens));
    if (pos_kernel_) {
      GetRowsPush pp{positions_.offset, positions_.row_bytes, u32(positions_.n_in), v.positions, o.off, o.stride,
                     u32(b.n_tokens), 1};
      be_.dispatch(*pos_kernel_, {positions_.buf, &ints, o.buf}, &pp, sizeof pp, u32(b.n_tokens));
    }
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, n = static_cast<double>(table_.n_in), pos = pos_kernel_ ? 1.0 : 0.0;
    return {pos * m * n,
            m * (dtype_row_bytes(table_.dtype, table_.n_in) +
                 pos * (dtype_row_bytes(positions_.dtype, positions_.n_in) + 8.0 * n) + 4.0 * n)};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  DevWeight table_;      // [n_vocab][n_embd]
  DevWeight positions_;  // [n_positions][n_embd], when the model has learned positions
  const Kernel* kernel_ = nullptr;
  const Kernel* pos_kernel_ = nullptr;  // null without learned positions
};

}  // namespace

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx) { return std::make_unique<EmbeddingLookup>(ctx); }

}  // namespace semline::vk
