// norm/rms: out = in / sqrt(mean(in^2) + eps) * weight, one workgroup per row.
#include <semline/error.h>

#include "stages/common.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

struct NormPush {
  uint32_t x_off, x_stride, y_off, y_stride, w_off, n, rows;
  float eps;
};

class NormRms final : public Stage {
 public:
  explicit NormRms(const StageContext& ctx) : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)) {
    const HParams& hp = hparams_of(ctx);
    n_ = hp.n_embd;
    eps_ = static_cast<float>(hp.norm_eps);
    // The scale is read as float by every row; convert it once here, whatever the file stores.
    const std::vector<float> w = weight_as_floats(ctx, "weight", n_);
    const Tensor dev = be_.upload_private(w.data(), make_tensor(DType::F32, {n_}));
    w_ = &be_.buffer_of(dev, "weight", label_).gpu();
    w_off_ = static_cast<uint32_t>(dev.offset / 4);
    kernel_ = &be_.kernels().get(ShaderId::RmsNorm, {128});
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens;
    be_.stream_of(step.stream);
    const DevRows x = activation(be_, in, n_, m, "input", label_);
    const DevRows y = activation(be_, out, n_, m, "output", label_);
    NormPush p{x.off, x.stride, y.off, y.stride, w_off_, u32(n_), u32(m), eps_};
    be_.dispatch(*kernel_, {x.buf, w_, y.buf}, &p, sizeof p, static_cast<uint64_t>(m));
  }

  StageCost cost(const Batch& b) const override {
    const double n = static_cast<double>(n_), m = b.n_tokens;
    return {4.0 * n * m, 8.0 * n * m + 4.0 * n};
  }

 private:
  VulkanBackend& be_;
  std::string label_;
  int64_t n_ = 0;
  float eps_ = 1e-5f;
  const GpuBuffer* w_ = nullptr;
  uint32_t w_off_ = 0;
  const Kernel* kernel_ = nullptr;
};

}  // namespace

std::vector<std::string> norm_rms_supports(const StageContext& ctx) {
  std::vector<std::string> why = weights_supported(ctx);
  refuse_roles(ctx, {"bias"}, "a shift (a LayerNorm)", why);
  return why;
}

std::unique_ptr<Stage> make_norm_rms(const StageContext& ctx) { return std::make_unique<NormRms>(ctx); }

}  // namespace semline::vk
