// norm/rms:   out = in / sqrt(mean(in^2) + eps) * weight
// norm/layer: out = (in - mean(in)) / sqrt(var(in) + eps) * weight + bias   (bias optional)
// one workgroup per row.
#include <semline/error.h>

#include "stages/common.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

struct NormPush {
  uint32_t x_off, x_stride, y_off, y_stride, w_off, n, rows;
  float eps;
};

class Norm final : public Stage {
 public:
  Norm(const StageContext& ctx, bool layer) : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), layer_(layer) {
    const HParams& hp = hparams_of(ctx);
    n_ = hp.n_embd;
    eps_ = static_cast<float>(hp.norm_eps);
    // Scale (and shift) are read as float by every row; converted once here, whatever the file
    // stores. The layer kernel reads the shift right after the scale, zeros when there is none.
    std::vector<float> w = weight_as_floats(ctx, "weight", n_, "(n_embd)");
    if (layer_) {
      const std::vector<float> b = is_bound(ctx, "bias") ? weight_as_floats(ctx, "bias", n_, "(n_embd)")
                                                          : std::vector<float>(static_cast<size_t>(n_), 0.0f);
      w.insert(w.end(), b.begin(), b.end());
    }
    w_ = upload_floats(be_, w, label_);
    kernel_ = &be_.kernels().get(layer_ ? ShaderId::LayerNorm : ShaderId::RmsNorm, {128});
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens;
    be_.stream_of(step.stream);
    const DevRows x = activation(be_, in, n_, m, "input", label_);
    const DevRows y = activation(be_, out, n_, m, "output", label_);
    NormPush p{x.off, x.stride, y.off, y.stride, w_.off, u32(n_), u32(m), eps_};
    be_.dispatch(*kernel_, {x.buf, w_.buf, y.buf}, &p, sizeof p, static_cast<uint64_t>(m));
  }

  StageCost cost(const Batch& b) const override {
    const double n = static_cast<double>(n_), m = b.n_tokens, params = layer_ ? 2.0 : 1.0;
    return {(layer_ ? 7.0 : 4.0) * n * m, 8.0 * n * m + 4.0 * params * n};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  bool layer_;
  int64_t n_ = 0;
  float eps_ = 1e-5f;
  DevVector w_;  // [n_embd] scale, for layer then [n_embd] shift
  const Kernel* kernel_ = nullptr;
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

}  // namespace semline::vk
