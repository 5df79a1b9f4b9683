// norm/rms:   out = in / sqrt(mean(in^2) + eps) * weight
// norm/layer: out = (in - mean(in)) / sqrt(var(in) + eps) * weight + bias   (bias optional)
// row by row.
#include <vector>

#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class Norm final : public Stage {
 public:
  Norm(const StageContext& ctx, bool layer) : be_(cpu_backend_of(ctx)), label_(station_label(ctx)), layer_(layer) {
    const HParams& hp = hparams_of(ctx);
    eps_ = static_cast<float>(hp.norm_eps);
    weight_ = bind_vector(ctx, "weight", hp.n_embd, "(n_embd)");
    if (layer_)
      bias_ = is_bound(ctx, "bias") ? bind_vector(ctx, "bias", hp.n_embd, "(n_embd)")
                                     : std::vector<float>(static_cast<size_t>(hp.n_embd), 0.0f);
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t n = static_cast<int64_t>(weight_.size()), m = step.batch.n_tokens;
    const Act x = activation(in, n, m, "input", label_);
    const Act y = activation(out, n, m, "output", label_);
    const Kernels& kern = be_.kernels();
    const int64_t grain = n >= 4096 ? 4 : 16;
    be_.pool().run(m, grain, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        if (layer_) kern.layer_norm(x.p + r * x.stride, weight_.data(), bias_.data(), y.p + r * y.stride, n, eps_);
        else kern.rms_norm(x.p + r * x.stride, weight_.data(), y.p + r * y.stride, n, eps_);
      }
    });
  }

  StageCost cost(const Batch& b) const override {
    const double n = static_cast<double>(weight_.size()), m = b.n_tokens, params = layer_ ? 2.0 : 1.0;
    return {(layer_ ? 7.0 : 4.0) * n * m, 8.0 * n * m + 4.0 * params * n};
  }

 private:
  CpuBackend& be_;
  std::string label_;
  bool layer_;
  std::vector<float> weight_;  // [n_embd]
  std::vector<float> bias_;    // [n_embd], layer only (zeros when the station has none)
  float eps_ = 1e-5f;
};

}  // namespace

std::vector<std::string> norm_rms_supports(const StageContext& ctx) {
  std::vector<std::string> why = weights_supported(ctx);
  if (is_bound(ctx, "bias"))
    why.push_back("the station has a bias ('" + tensor_name(ctx, "bias") +
                  "'): it is a LayerNorm; norm/rms has no mean and no shift (use norm/layer)");
  return why;
}

std::unique_ptr<Stage> make_norm_rms(const StageContext& ctx) { return std::make_unique<Norm>(ctx, false); }
std::unique_ptr<Stage> make_norm_layer(const StageContext& ctx) { return std::make_unique<Norm>(ctx, true); }

}  // namespace semline::cpu
