// ssm/mamba2: out += out_proj(y), Mamba-2's selective state-space mixer (llama.cpp's `mamba2`):
//   z | xBC | dt = in_proj(in)                       d_inner, d_inner + 2 n_group d_state, n_head
//   x | B | C    = silu(causal_conv(xBC) + conv_bias)  the convolution covers x, B and C
//   y = scan(x, dt + dt_bias, A, B, C) + D x, times silu(z)   heads share dt, A and D; groups of
//                                                    heads share B and C
//   y = group_rms_norm(y) * norm                     each group's d_inner / n_group channels
// The convolution's last inputs and the scan's state are the sequence's recurrent state.
#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/ssm_station.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class SsmMamba2 final : public SsmStation {
 public:
  SsmMamba2(const StageContext& ctx, Kernels& k, SsmKernels& s) : SsmStation(ctx, k, s) {
    shape_.n_head = dim("ssm_n_head");
    shape_.n_group = dim("ssm_n_group");
    const int64_t di = shape_.d_inner, h = shape_.n_head, g = shape_.n_group;
    if (di <= 0 || shape_.d_conv <= 1 || shape_.d_state <= 0 || h <= 0 || g <= 0 || di % h != 0 || h % g != 0)
      throw Error(label_ + ": d_inner " + std::to_string(di) + " must be a positive multiple of n_head " +
                  std::to_string(h) + ", n_head of n_group " + std::to_string(g) + ", d_state " +
                  std::to_string(shape_.d_state) + " positive and d_conv " + std::to_string(shape_.d_conv) + " above 1");
    const int64_t d = hp_.n_embd, ch = shape_.conv_channels(), width = 2 * di + 2 * g * shape_.d_state + h;
    in_ = bind_linear(ctx, k_, "in", d, width, "(n_embd, 2 d_inner + 2 n_group d_state + n_head)", nullptr,
                      max_tokens_);
    out_ = bind_linear(ctx, k_, "out", di, d, "(d_inner, n_embd)", nullptr, max_tokens_);
    SsmConstants c;
    c.conv = weight_floats(ctx, "conv", shape_.d_conv, ch, "(d_conv, d_inner + 2 n_group d_state)");
    c.conv_bias = weight_vector(ctx, "conv_bias", ch, "(d_inner + 2 n_group d_state)");
    c.a = weight_floats(ctx, "a", 1, h, "(1, n_head)");
    c.dt_bias = weight_vector(ctx, "dt_bias", h, "(n_head)");
    const std::vector<float> per_head = weight_floats(ctx, "d", 1, h, "(1, n_head)");
    for (int64_t c_ = 0; c_ < di; ++c_) c.d.push_back(per_head[static_cast<size_t>(c_ / (di / h))]);
    ssm_ = s_.bind_ssm(label_, shape_, std::move(c));
    const std::vector<float> norm = weight_floats(ctx, "norm", di / g, g, "(d_inner / n_group, n_group)");
    for (int64_t i = 0; i < g; ++i)
      norms_.push_back(k_.bind_norm(label_, std::vector<float>(norm.begin() + i * (di / g),
                                                               norm.begin() + (i + 1) * (di / g)), {}));
    proj_ = plan_.add_rows(width, max_tokens_);
    u_ = plan_.add_rows(ch, max_tokens_);
    y_ = plan_.add_rows(di, max_tokens_);
    normed_ = plan_.add_rows(di, max_tokens_);
    k_.reserve_scratch(plan_.total());
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens, di = shape_.d_inner, gs = shape_.n_group * shape_.d_state;
    const int64_t ch = shape_.conv_channels(), width = di + ch + shape_.n_head;
    const auto [x, h] = begin_rows(step, in, out, hp_.n_embd);
    check_state(step);
    if (m == 0) return;
    const Tensor proj = k_.scratch_rows(proj_, width, m), u = k_.scratch_rows(u_, ch, m);
    const Tensor y = k_.scratch_rows(y_, di, m), normed = k_.scratch_rows(normed_, di, m);
    const Product in_proj{in_.get(), proj};
    k_.linear(step, x, {&in_proj, 1}, m);
    s_.ssm_conv(step, *ssm_, columns(proj, di, ch), u);
    s_.ssm_scan(step, *ssm_, columns(u, 0, di), columns(proj, di + ch, shape_.n_head), columns(u, di, gs),
                columns(u, di + gs, gs), columns(proj, 0, di), y);
    // Each group of channels RMS-normalised with its own scale (the model's epsilon).
    const int64_t gw = di / shape_.n_group;
    for (int64_t g = 0; g < shape_.n_group; ++g)
      k_.norm(step, NormKind::Rms, *norms_[static_cast<size_t>(g)], static_cast<float>(hp_.norm_eps),
              columns(y, g * gw, gw), columns(normed, g * gw, gw), m, false);
    const Product residual{out_.get(), h, true};  // out += out_proj(y)
    k_.linear(step, normed, {&residual, 1}, m);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, d = static_cast<double>(hp_.n_embd), di = static_cast<double>(shape_.d_inner);
    const double ds = static_cast<double>(shape_.d_state), ch = static_cast<double>(shape_.conv_channels());
    const double width = di + ch + static_cast<double>(shape_.n_head);
    const double flops = 2.0 * m * (d * width + di * d) + m * (2.0 * static_cast<double>(shape_.d_conv) * ch +
                                                               4.0 * di * ds + 20.0 * di);
    const double bytes = in_->bytes() + out_->bytes() + state_bytes(b) + m * 4.0 * (2 * d + 2 * width + 2 * ch + 6 * di);
    return {flops, bytes};
  }

 private:
  std::unique_ptr<LinearWeight> in_, out_;
  std::vector<std::unique_ptr<NormWeights>> norms_;  // one per group
  size_t proj_ = 0, u_ = 0, y_ = 0, normed_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_ssm_mamba2(const StageContext& ctx, Kernels& k, SsmKernels& s) {
  return std::make_unique<SsmMamba2>(ctx, k, s);
}

std::vector<std::string> ssm_mamba2_supported(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = weights_supported(ctx, backend);
  if (!ctx.hp) return why;
  for (const char* key : {"ssm_d_inner", "ssm_d_conv", "ssm_d_state", "ssm_n_head", "ssm_n_group"})
    if (ctx.hp->extra_or(key, 0) <= 0)
      why.push_back(std::string("the model has no ") + key + " (ssm/mamba2 mixes with Mamba-2's heads and groups)");
  for (std::string& r : missing_roles(ctx, {"in", "conv", "conv_bias", "dt_bias", "a", "d", "norm", "out"},
                                      "ssm/mamba2 needs in_proj, conv1d, dt_bias, A, D, the group norm and out_proj"))
    why.push_back(std::move(r));
  return why;
}

}  // namespace semline::stations
