#include "common/reference_mamba.h"

#include <algorithm>
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
  if (arch == "mamba2") n_group_ = u("ssm.group_count");
  if (arch == "jamba") {
    n_head_ = u("attention.head_count");
    const MetaValue& kv = need_meta(m, "jamba.attention.head_count_kv");
    for (uint64_t l = 0; l < kv.count; ++l) n_head_kv_ = std::max<int64_t>(n_head_kv_, kv.at<uint32_t>(l));
    const MetaValue* used = m.meta("jamba.expert_used_count");
    n_expert_used_ = used ? static_cast<int64_t>(used->u) : 0;
  }
  k_.resize(static_cast<size_t>(n_layer_));
  v_.resize(static_cast<size_t>(n_layer_));
  eps_ = need_meta(m, arch + ".attention.layer_norm_rms_epsilon").f;
  n_vocab_ = m.weight("token_embd.weight")->ne[1];
  const int64_t channels = d_inner_ + 2 * n_group_ * d_state_;
  conv_.assign(static_cast<size_t>(n_layer_), std::vector<double>(static_cast<size_t>((d_conv_ - 1) * channels), 0.0));
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

std::vector<double> ReferenceMamba::conv(int64_t l, const std::string& p, const std::vector<double>& in) {
  const int64_t C = static_cast<int64_t>(in.size()), K = d_conv_;
  std::vector<double>& cs = conv_[static_cast<size_t>(l)];       // [K - 1][C], oldest first
  const std::vector<double>& taps = w(p + "ssm_conv1d.weight");  // [C][K]: tap K - 1 meets this token
  const std::vector<double>& bias = w(p + "ssm_conv1d.bias");
  std::vector<double> u(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    double acc = bias[c];
    for (int64_t k = 0; k < K - 1; ++k) acc += taps[c * K + k] * cs[k * C + c];
    acc += taps[c * K + K - 1] * in[c];
    u[c] = silu(acc);
    for (int64_t k = 0; k + 1 < K - 1; ++k) cs[k * C + c] = cs[(k + 1) * C + c];
    cs[(K - 2) * C + c] = in[c];
  }
  return u;
}

std::vector<double> ReferenceMamba::mamba1(int64_t l, const std::string& p, const std::vector<double>& x) {
  const int64_t E = d_inner_, N = d_state_, R = dt_rank_;
  const bool q = opt_.quantize_ssm_inputs;
  const std::vector<double> xz = matvec(p + "ssm_in.weight", x, q);
  const std::vector<double> u = conv(l, p, std::vector<double>(xz.begin(), xz.begin() + E));
  std::vector<double> dbc = matvec(p + "ssm_x.weight", u, q);
  std::vector<double> dt_in(dbc.begin(), dbc.begin() + R), b(dbc.begin() + R, dbc.begin() + R + N),
      cm(dbc.begin() + R + N, dbc.end());
  if (dt_b_c_rms_) {
    dt_in = rmsnorm(dt_in, nullptr);
    b = rmsnorm(b, nullptr);
    cm = rmsnorm(cm, nullptr);
  } else if (m_.weight(p + "ssm_dt_norm.weight")) {  // Jamba: with scales
    dt_in = rmsnorm(dt_in, w(p + "ssm_dt_norm.weight").data());
    b = rmsnorm(b, w(p + "ssm_b_norm.weight").data());
    cm = rmsnorm(cm, w(p + "ssm_c_norm.weight").data());
  }
  const std::vector<double> dt = matvec(p + "ssm_dt.weight", dt_in, q);
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
  return matvec(p + "ssm_out.weight", y, q);
}

std::vector<double> ReferenceMamba::mamba2(int64_t l, const std::string& p, const std::vector<double>& x) {
  const int64_t E = d_inner_, N = d_state_, H = dt_rank_, G = n_group_, P = E / H, C = E + 2 * G * N;
  const bool q = opt_.quantize_ssm_inputs;
  const std::vector<double> zxbcdt = matvec(p + "ssm_in.weight", x, q);  // z | xBC | dt
  const std::vector<double> u = conv(l, p, std::vector<double>(zxbcdt.begin() + E, zxbcdt.begin() + E + C));
  const std::vector<double>& dt_b = w(p + "ssm_dt.bias");
  const std::vector<double>& a = w(p + "ssm_a");  // [H]
  const std::vector<double>& d = w(p + "ssm_d");  // [H]
  std::vector<double>& s = ssm_[static_cast<size_t>(l)];
  std::vector<double> y(static_cast<size_t>(E));
  for (int64_t e = 0; e < H; ++e) {
    const double delta = softplus(zxbcdt[E + C + e] + dt_b[e]), decay = std::exp(delta * a[e]);
    const int64_t g = e / (H / G);
    const double* b = u.data() + E + g * N;
    const double* cm = u.data() + E + G * N + g * N;
    for (int64_t c = e * P; c < (e + 1) * P; ++c) {
      double acc = 0;
      for (int64_t n = 0; n < N; ++n) {
        double& st = s[c * N + n];
        st = st * decay + b[n] * delta * u[c];
        acc += st * cm[n];
      }
      y[c] = (acc + d[e] * u[c]) * silu(zxbcdt[c]);
    }
  }
  // Each group's channels RMS-normalised and scaled.
  const std::vector<double>& scale = w(p + "ssm_norm.weight");
  const int64_t gw = E / G;
  std::vector<double> normed;
  for (int64_t g = 0; g < G; ++g) {
    const std::vector<double> part =
        rmsnorm(std::vector<double>(y.begin() + g * gw, y.begin() + (g + 1) * gw), scale.data() + g * gw);
    normed.insert(normed.end(), part.begin(), part.end());
  }
  return matvec(p + "ssm_out.weight", normed, q);
}

// Causal attention over every position so far, no positional encoding (Jamba), GQA.
std::vector<double> ReferenceMamba::attention(int64_t l, const std::string& p, const std::vector<double>& x) {
  const bool q8 = opt_.quantize_other_inputs;
  const int64_t hd = n_embd_ / n_head_, group = n_head_ / n_head_kv_;
  const std::vector<double> q = matvec(p + "attn_q.weight", x, q8);
  k_[static_cast<size_t>(l)].push_back(matvec(p + "attn_k.weight", x, q8));
  v_[static_cast<size_t>(l)].push_back(matvec(p + "attn_v.weight", x, q8));
  const auto& keys = k_[static_cast<size_t>(l)];
  const auto& values = v_[static_cast<size_t>(l)];
  std::vector<double> out(static_cast<size_t>(n_head_ * hd), 0.0);
  for (int64_t h = 0; h < n_head_; ++h) {
    const int64_t kvh = h / group;
    std::vector<double> score(keys.size());
    double top = -INFINITY;
    for (size_t t = 0; t < keys.size(); ++t) {
      double dot = 0;
      for (int64_t i = 0; i < hd; ++i) dot += q[h * hd + i] * keys[t][kvh * hd + i];
      score[t] = dot / std::sqrt(static_cast<double>(hd));
      top = std::max(top, score[t]);
    }
    double sum = 0;
    for (double& sc : score) sum += sc = std::exp(sc - top);
    for (size_t t = 0; t < keys.size(); ++t)
      for (int64_t i = 0; i < hd; ++i) out[h * hd + i] += score[t] / sum * values[t][kvh * hd + i];
  }
  return matvec(p + "attn_output.weight", out, q8);
}

// down(silu(gate x) * up x), of one expert's slices when expert >= 0.
std::vector<double> ReferenceMamba::swiglu(const std::string& gate, const std::string& up, const std::string& down,
                                           const std::vector<double>& x, int64_t expert) {
  auto product = [&](const std::string& name, const std::vector<double>& in) {
    if (expert < 0) return matvec(name, in, opt_.quantize_other_inputs);
    std::vector<double> xin = in;
    const DType dt = m_.weight(name)->dtype;
    if (opt_.quantize_other_inputs && (dt == DType::Q8_0 || dt == DType::Q4_0)) round_like_q8_input(xin);
    const std::vector<double>& W = w(name);
    const Tensor& t = *m_.weight(name);
    const size_t n_in = static_cast<size_t>(t.ne[0]), n_out = static_cast<size_t>(t.ne[1]);
    const double* we = W.data() + static_cast<size_t>(expert) * n_in * n_out;
    std::vector<double> y(n_out, 0.0);
    for (size_t o = 0; o < n_out; ++o)
      for (size_t i = 0; i < n_in; ++i) y[o] += we[o * n_in + i] * xin[i];
    return y;
  };
  const std::vector<double> g = product(gate, x), u = product(up, x);
  std::vector<double> hidden(g.size());
  for (size_t i = 0; i < g.size(); ++i) hidden[i] = silu(g[i]) * u[i];
  return product(down, hidden);
}

// Dense SwiGLU, or a mixture where the layer has a router: the chosen experts weighted by their
// softmax over every expert (Jamba's, not renormalised). None in a Mamba model.
std::vector<double> ReferenceMamba::ffn(const std::string& p, const std::vector<double>& x) {
  if (m_.weight(p + "ffn_gate_inp.weight")) {
    const std::vector<double> logits = matvec(p + "ffn_gate_inp.weight", x, false);
    const double top = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (double l : logits) sum += std::exp(l - top);
    std::vector<int64_t> order(logits.size());
    for (size_t e = 0; e < order.size(); ++e) order[e] = static_cast<int64_t>(e);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
    std::vector<double> out(static_cast<size_t>(n_embd_), 0.0);
    for (int64_t k = 0; k < n_expert_used_; ++k) {
      const int64_t e = order[static_cast<size_t>(k)];
      const double weight = std::exp(logits[e] - top) / sum;
      const std::vector<double> y =
          swiglu(p + "ffn_gate_exps.weight", p + "ffn_up_exps.weight", p + "ffn_down_exps.weight", x, e);
      for (int64_t i = 0; i < n_embd_; ++i) out[i] += weight * y[i];
    }
    return out;
  }
  return swiglu(p + "ffn_gate.weight", p + "ffn_up.weight", p + "ffn_down.weight", x, -1);
}

std::vector<double> ReferenceMamba::step(int32_t token) {
  const std::vector<double>& emb = w("token_embd.weight");
  std::vector<double> h(emb.begin() + token * n_embd_, emb.begin() + (token + 1) * n_embd_);
  for (int64_t l = 0; l < n_layer_; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::vector<double> x = rmsnorm(h, w(p + "attn_norm.weight").data());
    const std::vector<double> out = m_.weight(p + "attn_q.weight") ? attention(l, p, x)
                                    : n_group_ > 0                 ? mamba2(l, p, x)
                                                                   : mamba1(l, p, x);
    for (int64_t i = 0; i < n_embd_; ++i) h[i] += out[i];
    if (!m_.weight(p + "ffn_norm.weight")) continue;
    const std::vector<double> f = ffn(p, rmsnorm(h, w(p + "ffn_norm.weight").data()));
    for (int64_t i = 0; i < n_embd_; ++i) h[i] += f[i];
  }
  const std::vector<double> x = rmsnorm(h, w("output_norm.weight").data());
  return matvec(m_.weight("output.weight") ? "output.weight" : "token_embd.weight", x, opt_.quantize_other_inputs);
}

}  // namespace semline::testing
