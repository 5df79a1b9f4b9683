#include "common/reference_gpt2.h"
#include "common/reference_model.h"

#include <cmath>
#include <stdexcept>

#include <semline/codec.h>

namespace semline::testing {

HParams read_gpt2_hparams(const ModelView& m) {
  HParams hp = read_common_hparams(m, "gpt2");
  hp.n_ctx_train = static_cast<int64_t>(need_meta(m, "gpt2.context_length").u);
  hp.norm_eps = need_meta(m, "gpt2.attention.layer_norm_epsilon").f;
  hp.rope_type = RopeType::None;
  const MetaValue* act = m.meta("gpt2.feed_forward_activation");
  hp.ffn_act = act && act->str == "gelu" ? Activation::Gelu : Activation::GeluTanh;
  return hp;
}

ReferenceGpt2::ReferenceGpt2(const ModelView& m, const HParams& hp) : m_(m), w(m), hp_(hp), k_(hp.n_layer), v_(hp.n_layer) {}

std::vector<double> ReferenceGpt2::affine(const std::string& prefix, const std::vector<double>& x) {
  const std::vector<double>& W = w(prefix + ".weight");
  const std::vector<double>& b = w(prefix + ".bias");
  const size_t n_in = x.size(), n_out = W.size() / n_in;
  std::vector<double> y(n_out);
  for (size_t o = 0; o < n_out; ++o) {
    double s = b[o];
    for (size_t i = 0; i < n_in; ++i) s += W[o * n_in + i] * x[i];
    y[o] = s;
  }
  return y;
}

std::vector<double> ReferenceGpt2::layernorm(const std::vector<double>& x, const std::string& prefix) {
  const std::vector<double>& g = w(prefix + ".weight");
  const std::vector<double>& b = w(prefix + ".bias");
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  const double r = 1.0 / std::sqrt(var / static_cast<double>(x.size()) + hp_.norm_eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) * r * g[i] + b[i];
  return y;
}

double ReferenceGpt2::gelu(double x) const {
  if (hp_.ffn_act == Activation::Gelu) return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

std::vector<double> ReferenceGpt2::step(int32_t token) {
  const int64_t d = hp_.n_embd, hd = hp_.head_dim, nh = hp_.n_head;
  if (pos_ >= hp_.n_ctx_train) throw std::runtime_error("reference: past the learned positions");
  const std::vector<double>& wte = w("token_embd.weight");
  const std::vector<double>& wpe = w("position_embd.weight");
  std::vector<double> x(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) x[i] = wte[token * d + i] + wpe[pos_ * d + i];
  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::vector<double> qkv = affine(p + "attn_qkv", layernorm(x, p + "attn_norm"));  // q | k | v
    k_[l].insert(k_[l].end(), qkv.begin() + d, qkv.begin() + 2 * d);
    v_[l].insert(v_[l].end(), qkv.begin() + 2 * d, qkv.end());
    std::vector<double> att(static_cast<size_t>(d), 0.0);
    const int64_t n_ctx = pos_ + 1;
    for (int64_t h = 0; h < nh; ++h) {
      std::vector<double> score(static_cast<size_t>(n_ctx));
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_ctx; ++t) {
        double s = 0;
        for (int64_t i = 0; i < hd; ++i) s += qkv[h * hd + i] * k_[l][t * d + h * hd + i];
        score[t] = s / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, score[t]);
      }
      double sum = 0;
      for (double& s : score) sum += (s = std::exp(s - mx));
      for (int64_t t = 0; t < n_ctx; ++t)
        for (int64_t i = 0; i < hd; ++i) att[h * hd + i] += score[t] / sum * v_[l][t * d + h * hd + i];
    }
    const std::vector<double> o = affine(p + "attn_output", att);
    for (int64_t i = 0; i < d; ++i) x[i] += o[i];
    std::vector<double> up = affine(p + "ffn_up", layernorm(x, p + "ffn_norm"));
    for (double& v : up) v = gelu(v);
    const std::vector<double> down = affine(p + "ffn_down", up);
    for (int64_t i = 0; i < d; ++i) x[i] += down[i];
  }
  x = layernorm(x, "output_norm");
  ++pos_;
  const std::vector<double>& out = w(m_.weight("output.weight") ? "output.weight" : "token_embd.weight");
  std::vector<double> logits(out.size() / static_cast<size_t>(d));
  for (size_t o = 0; o < logits.size(); ++o) {
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += out[o * d + i] * x[i];
    logits[o] = s;
  }
  return logits;
}

}  // namespace semline::testing
