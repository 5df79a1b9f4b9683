#include "common/reference_mamba.h"

#include <cmath>
#include <string>

#include "common/reference_stages.h"

namespace semline::testing {

namespace {

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double softplus(double v) { return v > 20.0 ? v : std::log1p(std::exp(v)); }

}  // namespace

ReferenceMamba::ReferenceMamba(const ModelView& m, ReferenceMambaOptions opt) : m_(m), w(m), opt_(opt) {
  const std::string arch(need_meta(m, "general.architecture").str);
  auto u = [&](const char* key) { return static_cast<int64_t>(need_meta(m, arch + "." + key).u); };
  n_embd_ = u("embedding_length");
  n_layer_ = u("block_count");
  d_inner_ = u("ssm.inner_size");
  d_conv_ = u("ssm.conv_kernel");
  d_state_ = u("ssm.state_size");
  dt_rank_ = u("ssm.time_step_rank");
  const MetaValue* rms = m.meta(arch + ".ssm.dt_b_c_rms");
  dt_b_c_rms_ = rms && rms->u != 0;
  eps_ = need_meta(m, arch + ".attention.layer_norm_rms_epsilon").f;
  n_vocab_ = m.weight("token_embd.weight")->ne[1];
  conv_.assign(static_cast<size_t>(n_layer_), std::vector<double>(static_cast<size_t>((d_conv_ - 1) * d_inner_), 0.0));
  ssm_.assign(static_cast<size_t>(n_layer_), std::vector<double>(static_cast<size_t>(d_inner_ * d_state_), 0.0));
}

std::vector<double> ReferenceMamba::matvec(const std::string& name, std::vector<double> x, bool round_input) {
  const std::vector<double>& W = w(name);
  const DType dt = m_.weight(name)->dtype;
  if (round_input && (dt == DType::Q8_0 || dt == DType::Q4_0)) round_like_q8_input(x);
  const size_t n_in = x.size(), n_out = W.size() / n_in;
  std::vector<double> y(n_out, 0.0);
  for (size_t o = 0; o < n_out; ++o)
    for (size_t i = 0; i < n_in; ++i) y[o] += W[o * n_in + i] * x[i];
  return y;
}

std::vector<double> ReferenceMamba::rmsnorm(const std::vector<double>& x, const double* scale) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps_);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * (scale ? scale[i] : 1.0);
  return y;
}

std::vector<double> ReferenceMamba::step(int32_t token) {
  const std::vector<double>& emb = w("token_embd.weight");
  std::vector<double> h(emb.begin() + token * n_embd_, emb.begin() + (token + 1) * n_embd_);
  const int64_t E = d_inner_, N = d_state_, K = d_conv_, R = dt_rank_;
  const bool q = opt_.quantize_mixer_inputs;
  for (int64_t l = 0; l < n_layer_; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::vector<double> xz = matvec(p + "ssm_in.weight", rmsnorm(h, w(p + "attn_norm.weight").data()), q);
    // Causal convolution over the last K inputs of each channel (tap K - 1 meets this token).
    std::vector<double>& cs = conv_[static_cast<size_t>(l)];
    const std::vector<double>& taps = w(p + "ssm_conv1d.weight");  // [E][K]
    const std::vector<double>& conv_b = w(p + "ssm_conv1d.bias");
    std::vector<double> u(static_cast<size_t>(E));
    for (int64_t c = 0; c < E; ++c) {
      double acc = conv_b[c];
      for (int64_t k = 0; k < K - 1; ++k) acc += taps[c * K + k] * cs[k * E + c];
      acc += taps[c * K + K - 1] * xz[c];
      u[c] = silu(acc);
      for (int64_t k = 0; k + 1 < K - 1; ++k) cs[k * E + c] = cs[(k + 1) * E + c];
      cs[(K - 2) * E + c] = xz[c];
    }
    std::vector<double> dbc = matvec(p + "ssm_x.weight", u, q);
    std::vector<double> dt_in(dbc.begin(), dbc.begin() + R), b(dbc.begin() + R, dbc.begin() + R + N),
        cm(dbc.begin() + R + N, dbc.end());
    if (dt_b_c_rms_) {
      dt_in = rmsnorm(dt_in, nullptr);
      b = rmsnorm(b, nullptr);
      cm = rmsnorm(cm, nullptr);
    }
    std::vector<double> dt = matvec(p + "ssm_dt.weight", dt_in, q);
    const std::vector<double>& dt_b = w(p + "ssm_dt.bias");
    const std::vector<double>& a = w(p + "ssm_a");  // [E][N]
    const std::vector<double>& d = w(p + "ssm_d");
    std::vector<double>& s = ssm_[static_cast<size_t>(l)];
    std::vector<double> y(static_cast<size_t>(E));
    for (int64_t c = 0; c < E; ++c) {
      const double delta = softplus(dt[c] + dt_b[c]);
      double acc = 0;
      for (int64_t n = 0; n < N; ++n) {
        double& st = s[c * N + n];
        st = st * std::exp(delta * a[c * N + n]) + b[n] * delta * u[c];
        acc += st * cm[n];
      }
      y[c] = (acc + d[c] * u[c]) * silu(xz[E + c]);
    }
    const std::vector<double> out = matvec(p + "ssm_out.weight", y, q);
    for (int64_t i = 0; i < n_embd_; ++i) h[i] += out[i];
  }
  const std::vector<double> x = rmsnorm(h, w("output_norm.weight").data());
  return matvec(m_.weight("output.weight") ? "output.weight" : "token_embd.weight", x, opt_.quantize_head_input);
}

}  // namespace semline::testing
