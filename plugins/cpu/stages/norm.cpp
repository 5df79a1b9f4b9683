// norm/rms: out = in / sqrt(mean(in^2) + eps) * weight, row by row.
#include <vector>

#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class NormRms final : public Stage {
 public:
  explicit NormRms(const StageContext& ctx) : be_(cpu_backend_of(ctx)), label_(station_label(ctx)) {
    const HParams& hp = hparams_of(ctx);
    const Linear w = Linear::bind(ctx, "weight", hp.n_embd, 1, "(n_embd)");
    eps_ = static_cast<float>(hp.norm_eps);
    weight_.resize(static_cast<size_t>(hp.n_embd));
    be_.kernels().dequantize_row(w.dtype, w.data, weight_.data(), hp.n_embd);
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t n = static_cast<int64_t>(weight_.size()), m = step.batch.n_tokens;
    const Act x = activation(in, n, m, "input", label_);
    const Act y = activation(out, n, m, "output", label_);
    const Kernels& kern = be_.kernels();
    const int64_t grain = n >= 4096 ? 4 : 16;
    be_.pool().run(m, grain, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) kern.rms_norm(x.p + r * x.stride, weight_.data(), y.p + r * y.stride, n, eps_);
    });
  }

  StageCost cost(const Batch& b) const override {
    const double n = static_cast<double>(weight_.size()), m = b.n_tokens;
    return {4.0 * n * m, 8.0 * n * m + 4.0 * n};
  }

 private:
  CpuBackend& be_;
  std::string label_;
  std::vector<float> weight_;  // [n_embd]
  float eps_ = 1e-5f;
};

}  // namespace

std::unique_ptr<Stage> make_norm_rms(const StageContext& ctx) { return std::make_unique<NormRms>(ctx); }

}  // namespace semline::cpu
