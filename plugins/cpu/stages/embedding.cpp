// embedding/lookup: out[t] = token_embd[tokens[t]], dequantised to float.
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
    table_ = Linear::bind(ctx, "tokens", hp.n_embd, hp.n_vocab, "(n_embd, n_vocab)");
  }

  void forward(const Tensor&, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const Act o = activation(out, table_.n_in, b.n_tokens, "output", label_);
    for (int32_t t = 0; t < b.n_tokens; ++t)
      if (b.tokens[t] < 0 || b.tokens[t] >= table_.n_out)
        throw Error(label_ + ": token id " + std::to_string(b.tokens[t]) + " at batch row " +
                    std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(table_.n_out) + ")");
    const Kernels& kern = be_.kernels();
    const int64_t grain = table_.n_in >= 4096 ? 4 : 16;
    be_.pool().run(b.n_tokens, grain, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t)
        kern.dequantize_row(table_.dtype, table_.data + b.tokens[t] * table_.row_stride, o.p + t * o.stride,
                            table_.n_in);
    });
  }

  StageCost cost(const Batch& b) const override {
    const double n = b.n_tokens;
    return {0.0, n * (dtype_row_bytes(table_.dtype, table_.n_in) + 4.0 * table_.n_in)};
  }

 private:
  CpuBackend& be_;
  std::string label_;
  Linear table_;  // [n_vocab][n_embd]
};

}  // namespace

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx) {
  return std::make_unique<EmbeddingLookup>(ctx);
}

}  // namespace semline::cpu
