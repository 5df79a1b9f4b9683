#include "ops/ssm.h"

#include <semline/error.h>

#include "backend/step_data.h"
#include "ops/common.h"

namespace semline::vk {
namespace {

struct VkSsm final : stations::SsmWeights {
  DevVector conv;   // taps [d_conv][channels], then the bias [channels]
  DevVector scan;   // a, d [d_inner], then dt_bias (Mamba-2)
  uint32_t a_off = 0, d_off = 0, dtb_off = 0;  // words into scan's buffer
};

struct ConvPush {
  uint32_t u_off, u_stride, out_off, out_stride;
  uint32_t n_tokens, channels, d_conv, pos_off;
  uint32_t slot_off, st_off, st_row, w_off;
};
struct ScanPush {
  uint32_t x_off, x_stride, dt_off, dt_stride;
  uint32_t b_off, b_stride, c_off, c_stride;
  uint32_t z_off, z_stride, y_off, y_stride;
  uint32_t n_tokens, d_inner, d_state, n_head;
  uint32_t n_group, pos_off, slot_off, st_off;
  uint32_t st_row, a_off, d_off, dtb_off;
};

constexpr uint32_t kWorkgroup = 64;

class SsmKernels final : public stations::SsmKernels {
 public:
  explicit SsmKernels(VulkanBackend& be) : be_(be) {}

  std::unique_ptr<stations::SsmWeights> bind_ssm(const std::string& label, const stations::SsmShape& s,
                                                 stations::SsmConstants c) override {
    auto w = std::make_unique<VkSsm>();
    w->shape = s;
    const int64_t ch = s.conv_channels();
    std::vector<float> conv(static_cast<size_t>(s.d_conv * ch));
    for (int64_t i = 0; i < ch; ++i)
      for (int64_t k = 0; k < s.d_conv; ++k) conv[k * ch + i] = c.conv[i * s.d_conv + k];
    conv.insert(conv.end(), c.conv_bias.begin(), c.conv_bias.end());
    w->conv = upload_floats(be_, conv, label + ": the convolution");
    std::vector<float> scan = c.a;
    const uint32_t a_words = u32(static_cast<int64_t>(scan.size()));
    scan.insert(scan.end(), c.d.begin(), c.d.end());
    scan.insert(scan.end(), c.dt_bias.begin(), c.dt_bias.end());
    w->scan = upload_floats(be_, scan, label + ": the scan's constants");
    w->a_off = w->scan.off;
    w->d_off = w->scan.off + a_words;
    w->dtb_off = w->d_off + u32(s.d_inner);
    return w;
  }

  void ssm_conv(const Step& step, const stations::SsmWeights& sw, const Tensor& u, const Tensor& out) override {
    const VkSsm& w = static_cast<const VkSsm&>(sw);
    const StepView& view = be_.step_data().upload(step.batch);
    const Tensor& pool = step.state->pools[0];
    const DevRows ur = dev_rows(u), orow = dev_rows(out);
    same_buffer({ur, orow});
    const uint32_t ch = u32(w.shape.conv_channels());
    const ConvPush p{ur.off,   ur.stride,      orow.off,       orow.stride,
                     u32(step.batch.n_tokens), ch, u32(w.shape.d_conv), view.positions,
                     view.slots, u32(static_cast<int64_t>(pool.offset / 4)), u32(pool.nb[1] / 4), w.conv.off};
    be_.dispatch(kernel(conv_, ShaderId::SsmConv), {ur.buf, &be_.step_data().ints(), &state_buffer(pool), w.conv.buf},
                 &p, sizeof p, (ch + kWorkgroup - 1) / kWorkgroup);
  }

  void ssm_scan(const Step& step, const stations::SsmWeights& sw, const Tensor& x, const Tensor& dt, const Tensor& b,
                const Tensor& cm, const Tensor& z, const Tensor& y) override {
    const VkSsm& w = static_cast<const VkSsm&>(sw);
    const StepView& view = be_.step_data().upload(step.batch);
    const Tensor& pool = step.state->pools[1];
    const DevRows xr = dev_rows(x), dr = dev_rows(dt), br = dev_rows(b), cr = dev_rows(cm), zr = dev_rows(z), yr = dev_rows(y);
    same_buffer({xr, dr, br, cr, zr, yr});
    const stations::SsmShape& s = w.shape;
    const ScanPush p{xr.off,  xr.stride, dr.off,   dr.stride, br.off,    br.stride,
                     cr.off,  cr.stride, zr.off,   zr.stride, yr.off,    yr.stride,
                     u32(step.batch.n_tokens),     u32(s.d_inner),       u32(s.d_state), u32(s.n_head),
                     u32(s.n_group), view.positions, view.slots, u32(static_cast<int64_t>(pool.offset / 4)),
                     u32(pool.nb[1] / 4), w.a_off, w.d_off, w.dtb_off};
    be_.dispatch(kernel(scan_, ShaderId::SsmScan), {xr.buf, &be_.step_data().ints(), &state_buffer(pool), w.scan.buf},
                 &p, sizeof p, (u32(s.d_inner) + kWorkgroup - 1) / kWorkgroup);
  }

 private:
  // The kernels bind one buffer for every row operand (the station's scratch).
  static void same_buffer(std::initializer_list<DevRows> operands) {
    for (const DevRows& r : operands)
      if (r.buf != operands.begin()->buf) throw Error("vulkan ssm kernels: the rows of one call lie in different buffers");
  }
  const GpuBuffer& state_buffer(const Tensor& pool) const {
    return be_.buffer_of(pool, "recurrent state", "ssm").gpu();
  }
  const Kernel& kernel(const Kernel*& slot, ShaderId id) {
    if (!slot) slot = &be_.kernels().get(id, {kWorkgroup});
    return *slot;
  }

  VulkanBackend& be_;
  const Kernel* conv_ = nullptr;
  const Kernel* scan_ = nullptr;
};

}  // namespace

std::unique_ptr<stations::SsmKernels> make_ssm_kernels(VulkanBackend& be) { return std::make_unique<SsmKernels>(be); }

}  // namespace semline::vk
