// ssm/mamba: out += out_proj(y), Mamba-1's selective state-space mixer (llama.cpp's `mamba`):
//   x | z = in_proj(in)                              2 d_inner channels, x first
//   u     = silu(causal_conv(x) + conv_bias)         d_conv taps per channel, over the sequence
//   dt | B | C = x_proj(u)                           dt_rank, d_state, d_state (each RMS-normed:
//                                                    Falcon-Mamba's without a scale, Jamba's with)
//   dt    = dt_proj(dt) + dt_bias                    d_inner
//   y     = scan(u, dt, A, B, C) + D u, times silu(z)
// The convolution's last inputs and the scan's state are the sequence's recurrent state
// (Stage::state_sizes), carried from step to step by the line; nothing is cached per position.
#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/ssm_station.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

class SsmMamba final : public SsmStation {
 public:
  SsmMamba(const StageContext& ctx, Kernels& k, SsmKernels& s) : SsmStation(ctx, k, s) {
    rank_ = dim("ssm_dt_rank");
    if (shape_.d_inner <= 0 || shape_.d_conv <= 1 || shape_.d_state <= 0 || rank_ <= 0)
      throw Error(label_ + ": d_inner " + std::to_string(shape_.d_inner) + ", d_state " +
                  std::to_string(shape_.d_state) + " and dt_rank " + std::to_string(rank_) +
                  " must be positive and the convolution wider than 1 (d_conv " + std::to_string(shape_.d_conv) + ")");
    const int64_t d = hp_.n_embd, di = shape_.d_inner, ds = shape_.d_state, dbc = rank_ + 2 * ds;
    in_ = bind_linear(ctx, k_, "in", d, 2 * di, "(n_embd, 2 d_inner)", nullptr, max_tokens_);
    x_ = bind_linear(ctx, k_, "x", di, dbc, "(d_inner, dt_rank + 2 d_state)", nullptr, max_tokens_);
    dt_ = bind_linear(ctx, k_, "dt", rank_, di, "(dt_rank, d_inner)", "dt_bias", max_tokens_);
    out_ = bind_linear(ctx, k_, "out", di, d, "(d_inner, n_embd)", nullptr, max_tokens_);
    SsmConstants c;
    c.conv = weight_floats(ctx, "conv", shape_.d_conv, di, "(d_conv, d_inner)");
    c.conv_bias = weight_vector(ctx, "conv_bias", di, "(d_inner)");
    c.a = weight_floats(ctx, "a", ds, di, "(d_state, d_inner)");
    c.d = weight_vector(ctx, "d", di, "(d_inner)");
    ssm_ = s_.bind_ssm(label_, shape_, std::move(c));
    // dt, B and C RMS-normalised with the model's epsilon: Jamba with scales (its dt, b and c
    // norms), Falcon-Mamba without (ssm_dt_b_c_rms: ones).
    const bool scaled = is_bound(ctx, "dt_norm");
    if (scaled || hp_.extra_or("ssm_dt_b_c_rms", 0) != 0) {
      auto scale = [&](const char* role, int64_t n) {
        return scaled ? weight_vector(ctx, role, n, "(dt_rank or d_state)")
                      : std::vector<float>(static_cast<size_t>(n), 1.0f);
      };
      dt_norm_ = k_.bind_norm(label_, scale("dt_norm", rank_), {});
      b_norm_ = k_.bind_norm(label_, scale("b_norm", ds), {});
      c_norm_ = k_.bind_norm(label_, scale("c_norm", ds), {});
    }
    xz_ = plan_.add_rows(2 * di, max_tokens_);
    u_ = plan_.add_rows(di, max_tokens_);
    dbc_ = plan_.add_rows(dbc, max_tokens_);
    if (dt_norm_) normed_ = plan_.add_rows(dbc, max_tokens_);
    delta_ = plan_.add_rows(di, max_tokens_);
    y_ = plan_.add_rows(di, max_tokens_);
    k_.reserve_scratch(plan_.total());
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const int64_t m = step.batch.n_tokens, di = shape_.d_inner, ds = shape_.d_state, dbc = rank_ + 2 * ds;
    const auto [x, h] = begin_rows(step, in, out, hp_.n_embd);
    check_state(step);
    if (m == 0) return;
    const Tensor xz = k_.scratch_rows(xz_, 2 * di, m), u = k_.scratch_rows(u_, di, m);
    const Tensor proj = k_.scratch_rows(dbc_, dbc, m), delta = k_.scratch_rows(delta_, di, m);
    const Tensor y = k_.scratch_rows(y_, di, m);
    const Product in_proj{in_.get(), xz};
    k_.linear(step, x, {&in_proj, 1}, m);
    s_.ssm_conv(step, *ssm_, columns(xz, 0, di), u);
    const Product x_proj{x_.get(), proj};
    k_.linear(step, u, {&x_proj, 1}, m);
    Tensor dbc_rows = proj;
    if (dt_norm_) {
      dbc_rows = k_.scratch_rows(normed_, dbc, m);
      const float eps = static_cast<float>(hp_.norm_eps);
      k_.norm(step, NormKind::Rms, *dt_norm_, eps, columns(proj, 0, rank_), columns(dbc_rows, 0, rank_), m, false);
      k_.norm(step, NormKind::Rms, *b_norm_, eps, columns(proj, rank_, ds), columns(dbc_rows, rank_, ds), m, false);
      k_.norm(step, NormKind::Rms, *c_norm_, eps, columns(proj, rank_ + ds, ds), columns(dbc_rows, rank_ + ds, ds), m,
              false);
    }
    const Product dt_proj{dt_.get(), delta};
    k_.linear(step, columns(dbc_rows, 0, rank_), {&dt_proj, 1}, m);
    s_.ssm_scan(step, *ssm_, u, delta, columns(dbc_rows, rank_, ds), columns(dbc_rows, rank_ + ds, ds),
                columns(xz, di, di), y);
    const Product residual{out_.get(), h, true};  // out += out_proj(y)
    k_.linear(step, y, {&residual, 1}, m);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, d = static_cast<double>(hp_.n_embd), di = static_cast<double>(shape_.d_inner);
    const double ds = static_cast<double>(shape_.d_state), r = static_cast<double>(rank_), kc = static_cast<double>(shape_.d_conv);
    const double products = 2.0 * m * (d * 2 * di + di * (r + 2 * ds) + r * di + di * d);
    const double flops = products + m * di * (2 * kc + 7 * ds + 12);
    // The weights once, the activations' rows, and each sequence's state read and written once.
    const double bytes = in_->bytes() + x_->bytes() + dt_->bytes() + out_->bytes() + state_bytes(b) +
                         m * 4.0 * (2 * d + 8 * di + 2 * (r + 2 * ds));
    return {flops, bytes};
  }

 private:
  int64_t rank_ = 0;
  std::unique_ptr<LinearWeight> in_, x_, dt_, out_;
  std::unique_ptr<NormWeights> dt_norm_, b_norm_, c_norm_;  // Falcon-Mamba and Jamba only
  size_t xz_ = 0, u_ = 0, dbc_ = 0, normed_ = 0, delta_ = 0, y_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_ssm_mamba(const StageContext& ctx, Kernels& k, SsmKernels& s) {
  return std::make_unique<SsmMamba>(ctx, k, s);
}

std::vector<std::string> ssm_mamba_supported(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = weights_supported(ctx, backend);
  if (!ctx.hp) return why;
  for (const char* key : {"ssm_d_inner", "ssm_d_conv", "ssm_d_state", "ssm_dt_rank"})
    if (ctx.hp->extra_or(key, 0) <= 0)
      why.push_back(std::string("the model has no ") + key + " (ssm/mamba mixes with Mamba-1's selective scan)");
  for (std::string& r : missing_roles(ctx, {"in", "conv", "x", "dt", "a", "d", "out"},
                                      "ssm/mamba needs in_proj, conv1d, x_proj, dt_proj, A, D and out_proj"))
    why.push_back(std::move(r));
  return why;
}

}  // namespace semline::stations
