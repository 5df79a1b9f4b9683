// head/dense: logits[i] = W_out in[output_rows[i]], with W_out the output matrix when the model
// has one and the token embedding otherwise (tied weights). The wanted rows are gathered into
// scratch first unless they are already the first rows in order.
#include <semline/error.h>

#include "backend/step_data.h"
#include "backend/workspace.h"
#include "stages/common.h"
#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

class HeadDense final : public Stage {
 public:
  explicit HeadDense(const StageContext& ctx)
      : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
    const HParams& hp = hparams_of(ctx);
    const char* role = ctx.has_weight("output") ? "output" : "tokens";
    w_ = Linear(be_, bind_weight(ctx, role, hp.n_embd, hp.n_vocab, "(n_embd, n_vocab)"));
    if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
    rows_ = layout_.add_words(static_cast<size_t>(max_tokens_ * hp.n_embd));
    be_.workspace().reserve(layout_.bytes());
    be_.step_data().reserve(max_tokens_);
    gather_ = &be_.kernels().get(ShaderId::GetRows, {64, static_cast<uint32_t>(DType::F32)});
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t n = b.n_outputs, n_in = w_.weight().n_in, n_vocab = w_.weight().n_out;
    if (n > max_tokens_ || n > b.n_tokens || n < 0)
      throw Error(label_ + ": " + std::to_string(n) + " output rows for a batch of " + std::to_string(b.n_tokens) +
                  " tokens (max_batch_tokens " + std::to_string(max_tokens_) + ")");
    be_.stream_of(step.stream);
    const DevRows x = activation(be_, in, n_in, b.n_tokens, "input", label_);
    const DevRows y = activation(be_, out, n_vocab, n, "output", label_);
    bool in_order = true;
    for (int64_t i = 0; i < n; ++i) {
      if (b.output_rows[i] < 0 || b.output_rows[i] >= b.n_tokens)
        throw Error(label_ + ": output row " + std::to_string(b.output_rows[i]) + " is outside the batch of " +
                    std::to_string(b.n_tokens) + " tokens");
      in_order = in_order && b.output_rows[i] == i;
    }
    if (n == 0) return;
    DevRows rows = x;
    if (!in_order) {
      const StepView& v = be_.step_data().upload(b);
      const GpuBuffer& ws = be_.workspace().buffer();
      rows = DevRows{&ws, rows_, u32(n_in)};
      GetRowsPush p{x.off * 4, x.stride * 4, u32(n_in), v.out_rows, rows.off, rows.stride, u32(n), 0};
      be_.dispatch(*gather_, {x.buf, &be_.step_data().ints(), &ws}, &p, sizeof p, static_cast<uint64_t>(n));
    }
    w_.run(be_, rows, y, n, false);
  }

  StageCost cost(const Batch& b) const override {
    const double n = b.n_outputs;
    const DevWeight& w = w_.weight();
    return {2.0 * n * w.n_in * w.n_out, w.bytes() + n * 4.0 * (w.n_in + w.n_out)};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  Linear w_;  // [n_vocab][n_embd]
  ScratchLayout layout_;
  uint32_t rows_ = 0;  // [max_tokens][n_embd] floats: the gathered output rows
  const Kernel* gather_ = nullptr;
};

}  // namespace

std::unique_ptr<Stage> make_head_dense(const StageContext& ctx) { return std::make_unique<HeadDense>(ctx); }

}  // namespace semline::vk
