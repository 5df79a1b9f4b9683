// norm/rms:   out = in / sqrt(mean(in^2) + eps) * weight
// norm/layer: out = (in - mean(in)) / sqrt(var(in) + eps) * weight + bias   (bias optional)
// Scale and shift are converted to float once, whatever the file stores: every row reads them.
// As a post norm (Gemma 2's sandwich) the line asks it to add its rows into the residual stream.
#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class Norm final : public Station {
 public:
  Norm(const StageContext& ctx, Kernels& k, NormKind kind) : Station(ctx, k), kind_(kind) {
    takes_out_modes_ = true;
    eps_ = static_cast<float>(hp_.norm_eps);
    std::vector<float> shift;
    if (kind_ == NormKind::Layer)
      shift = is_bound(ctx, "bias") ? weight_vector(ctx, "bias", hp_.n_embd, "(n_embd)")
                                    : std::vector<float>(static_cast<size_t>(hp_.n_embd), 0.0f);
    w_ = k_.bind_norm(label_, weight_vector(ctx, "weight", hp_.n_embd, "(n_embd)"), std::move(shift));
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens;
    const auto [x, y] = begin_rows(step, in, out, hp_.n_embd);
    if (m > 0) k_.norm(step, kind_, *w_, eps_, x, y, m, adds(step, false));
  }

  StageCost cost(const Batch& b) const override {
    const bool layer = kind_ == NormKind::Layer;
    const double n = static_cast<double>(hp_.n_embd), m = b.n_tokens, params = layer ? 2.0 : 1.0;
    return {(layer ? 7.0 : 4.0) * n * m, 8.0 * n * m + 4.0 * params * n};
  }

 private:
  NormKind kind_;
  float eps_ = 1e-5f;
  std::unique_ptr<NormWeights> w_;
};

}  // namespace

std::unique_ptr<Stage> make_norm(const StageContext& ctx, Kernels& k, NormKind kind) {
  return std::make_unique<Norm>(ctx, k, kind);
}

std::vector<std::string> norm_rms_supports(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = weights_supported(ctx, backend);
  if (is_bound(ctx, "bias"))
    why.push_back("the station has a bias ('" + tensor_name(ctx, "bias") +
                  "'): it is a LayerNorm; norm/rms has no mean and no shift (use norm/layer)");
  return why;
}

}  // namespace semline::stations
