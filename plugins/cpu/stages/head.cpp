// head/dense: logits[i] = W_out in[output_rows[i]], with W_out the output matrix when the model
// has one and the token embedding otherwise (tied weights).
#include <cstring>

#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class HeadDense final : public Stage {
 public:
  explicit HeadDense(const StageContext& ctx)
      : be_(cpu_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    const char* role = ctx.has_weight("output") ? "output" : "tokens";
    w_ = Linear::bind(ctx, role, hp.n_embd, hp.n_vocab, "(n_embd, n_vocab)");
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    rows_ = layout_.add(static_cast<size_t>(max_tokens_ * w_.n_in) * 4);
    if (w_.quantized()) xq_.plan(layout_, max_tokens_, w_.n_in);
    be_.workspace().reserve(layout_.total());
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t n = b.n_outputs;
    if (n > max_tokens_ || n > b.n_tokens)
      throw Error(label_ + ": " + std::to_string(n) + " output rows for a batch of " +
                  std::to_string(b.n_tokens) + " tokens (max_batch_tokens " + std::to_string(max_tokens_) + ")");
    const Act x = activation(in, w_.n_in, b.n_tokens, "input", label_);
    const Act y = activation(out, w_.n_out, n, "output", label_);
    for (int64_t i = 0; i < n; ++i)
      if (b.output_rows[i] < 0 || b.output_rows[i] >= b.n_tokens)
        throw Error(label_ + ": output row " + std::to_string(b.output_rows[i]) + " is outside the batch of " +
                    std::to_string(b.n_tokens) + " tokens");
    if (n == 0) return;
    Workspace::Lease lease(be_.workspace());
    char* ws = be_.workspace().data();
    float* rows = reinterpret_cast<float*>(ws + rows_);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(rows + i * w_.n_in, x.p + b.output_rows[i] * x.stride, static_cast<size_t>(w_.n_in) * 4);
    QRows q{};
    Rows input{rows, w_.n_in, nullptr};
    if (w_.quantized()) {
      q = xq_.at(ws);
      quantize_rows(be_, rows, w_.n_in, n, w_.n_in, q);
      input.q = &q;
    }
    const MatOp op{&w_, input, y.p, y.stride, false};
    run_matmuls(be_, &op, 1, n);
  }

  StageCost cost(const Batch& b) const override {
    const double n = b.n_outputs;
    return {2.0 * n * w_.n_in * w_.n_out, w_.bytes() + n * 4.0 * (w_.n_in + w_.n_out)};
  }

 private:
  CpuBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  Linear w_;  // [n_vocab][n_embd]
  ScratchLayout layout_;
  size_t rows_ = 0;  // [max_tokens][n_embd] floats: the gathered output rows
  QRowsLayout xq_;
};

}  // namespace

std::unique_ptr<Stage> make_head_dense(const StageContext& ctx) { return std::make_unique<HeadDense>(ctx); }

}  // namespace semline::cpu
