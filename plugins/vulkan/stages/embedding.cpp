// embedding/lookup: out[t] = token_embd[tokens[t]], converted to float on the device.
#include <semline/error.h>

#include "backend/step_data.h"
#include "stages/common.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

struct GetRowsPush {
  uint32_t src_off, src_row, n, idx_off, out_off, out_stride, rows;
};

class EmbeddingLookup final : public Stage {
 public:
  explicit EmbeddingLookup(const StageContext& ctx)
      : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    table_ = bind_weight(ctx, "tokens", hp.n_embd, hp.n_vocab, "(n_embd, n_vocab)");
    kernel_ = &be_.kernels().get(ShaderId::GetRows, {64, static_cast<uint32_t>(table_.dtype)});
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
    for (int32_t t = 0; t < b.n_tokens; ++t)
      if (b.tokens[t] < 0 || b.tokens[t] >= table_.n_out)
        throw Error(label_ + ": token id " + std::to_string(b.tokens[t]) + " at batch row " + std::to_string(t) +
                    " is outside the vocabulary [0, " + std::to_string(table_.n_out) + ")");
    if (b.n_tokens == 0) return;
    const StepView& v = be_.step_data().upload(b);
    GetRowsPush p{table_.offset, table_.row_bytes, u32(table_.n_in), v.tokens, o.off, o.stride, u32(b.n_tokens)};
    be_.dispatch(*kernel_, {table_.buf, &be_.step_data().ints(), o.buf}, &p, sizeof p, u32(b.n_tokens));
  }

  StageCost cost(const Batch& b) const override {
    const double n = b.n_tokens;
    return {0.0, n * (dtype_row_bytes(table_.dtype, table_.n_in) + 4.0 * table_.n_in)};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  DevWeight table_;  // [n_vocab][n_embd]
  const Kernel* kernel_ = nullptr;
};

}  // namespace

std::vector<std::string> embedding_supports(const StageContext& ctx) {
  std::vector<std::string> why = weights_supported(ctx);
  refuse_roles(ctx, {"positions"}, "learned position rows", why);
  return why;
}

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx) { return std::make_unique<EmbeddingLookup>(ctx); }

}  // namespace semline::vk
