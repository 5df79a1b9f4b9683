// head/dense: logits[i] = W_out in[output_rows[i]], with W_out the output matrix when the model
// has one and the token embedding otherwise (tied weights). The wanted rows are gathered into
// scratch first unless they are already the first rows in order (decode, a prompt's last token
// alone). A model that soft-caps its logits (Gemma 2, HParams::extra final_logit_softcap) gets
// cap * tanh(logit / cap).
#include <semline/error.h>

#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class HeadDense final : public Station {
 public:
  HeadDense(const StageContext& ctx, Kernels& k)
      : Station(ctx, k), softcap_(static_cast<float>(hp_.extra_or("final_logit_softcap", 0.0))) {
    const char* role = ctx.has_weight("output") ? "output" : "tokens";
    w_ = bind_linear(ctx, k_, role, hp_.n_embd, hp_.n_vocab, "(n_embd, n_vocab)", nullptr, max_tokens_);
    rows_ = plan_.add_rows(hp_.n_embd, max_tokens_);
    k_.reserve_scratch(plan_.total());
    k_.reserve_tokens(max_tokens_);
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t n = b.n_outputs, n_in = w_->n_in;
    if (n > max_tokens_ || n > b.n_tokens || n < 0)
      throw Error(label_ + ": " + std::to_string(n) + " output rows for a batch of " + std::to_string(b.n_tokens) +
                  " tokens (max_batch_tokens " + std::to_string(max_tokens_) + ")");
    begin(step);
    const Tensor x = activation_rows(k_, in, n_in, b.n_tokens, "input", label_);
    const Tensor y = activation_rows(k_, out, w_->n_out, n, "output", label_);
    bool in_order = true;
    for (int64_t i = 0; i < n; ++i) {
      if (b.output_rows[i] < 0 || b.output_rows[i] >= b.n_tokens)
        throw Error(label_ + ": output row " + std::to_string(b.output_rows[i]) + " is outside the batch of " +
                    std::to_string(b.n_tokens) + " tokens");
      in_order = in_order && b.output_rows[i] == i;
    }
    if (n == 0) return;
    Tensor rows = row_range(x, 0, n);
    if (!in_order) {
      rows = k_.scratch_rows(rows_, n_in, n);
      k_.gather_outputs(step, x, rows);
    }
    const Product logits{w_.get(), y, false};
    k_.linear(step, rows, {&logits, 1}, n);
    if (softcap_ > 0) k_.softcap(step, y, n, softcap_);
  }

  StageCost cost(const Batch& b) const override {
    const double n = b.n_outputs;
    return {2.0 * n * w_->n_in * w_->n_out, w_->bytes() + n * 4.0 * (w_->n_in + w_->n_out)};
  }

 private:
  std::unique_ptr<LinearWeight> w_;  // [n_vocab][n_embd]
  size_t rows_ = 0;  // [max_tokens][n_embd] floats: the gathered output rows
  float softcap_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_head_dense(const StageContext& ctx, Kernels& k) { return std::make_unique<HeadDense>(ctx, k); }

}  // namespace semline::stations
