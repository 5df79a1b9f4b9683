#include "common/reference_llama.h"

#include <cmath>
#include <stdexcept>

#include <semline/codec.h>

namespace semline::testing {

namespace {

const MetaValue& need(const ModelView& m, const std::string& key) {
  const MetaValue* v = m.meta(key);
  if (!v) throw std::runtime_error("reference: missing " + key);
  return *v;
}

}  // namespace

HParams read_llama_hparams(const ModelView& m) {
  HParams hp;
  hp.arch = "llama";
  hp.n_embd = static_cast<int64_t>(need(m, "llama.embedding_length").u);
  hp.n_ff = static_cast<int64_t>(need(m, "llama.feed_forward_length").u);
  hp.n_layer = static_cast<int64_t>(need(m, "llama.block_count").u);
  hp.n_head = static_cast<int64_t>(need(m, "llama.attention.head_count").u);
  const MetaValue* kv = m.meta("llama.attention.head_count_kv");
  hp.n_head_kv = kv ? static_cast<int64_t>(kv->u) : hp.n_head;
  hp.head_dim = hp.n_embd / hp.n_head;
  const MetaValue* rd = m.meta("llama.rope.dimension_count");
  hp.rope_dim = rd ? static_cast<int64_t>(rd->u) : hp.head_dim;
  const MetaValue* base = m.meta("llama.rope.freq_base");
  hp.rope_base = base ? base->f : 10000.0;
  hp.norm_eps = need(m, "llama.attention.layer_norm_rms_epsilon").f;
  hp.n_vocab = static_cast<int64_t>(need(m, "tokenizer.ggml.tokens").count);
  return hp;
}

ReferenceLlama::ReferenceLlama(const ModelView& m, const HParams& hp) : m_(m), hp_(hp), k_(hp.n_layer), v_(hp.n_layer) {}

const std::vector<double>& ReferenceLlama::w(const std::string& name) {
  auto it = cache_.find(name);
  if (it != cache_.end()) return it->second;
  const Tensor* t = m_.weight(name);
  if (!t) throw std::runtime_error("reference: missing tensor " + name);
  std::vector<float> row(t->ne[0]);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(t->elements()));
  for (int64_t r = 0; r < t->rows(); ++r) {
    dequantize_row(t->dtype, static_cast<const char*>(t->host) + r * t->row_bytes(), row.data(), t->ne[0]);
    out.insert(out.end(), row.begin(), row.end());
  }
  return cache_[name] = std::move(out);
}

std::vector<double> ReferenceLlama::matvec(const std::string& name, const std::vector<double>& x) {
  const std::vector<double>& W = w(name);
  const size_t n_in = x.size(), n_out = W.size() / n_in;
  std::vector<double> y(n_out, 0.0);
  for (size_t o = 0; o < n_out; ++o) {
    double s = 0;
    for (size_t i = 0; i < n_in; ++i) s += W[o * n_in + i] * x[i];
    y[o] = s;
  }
  return y;
}

std::vector<double> ReferenceLlama::rmsnorm(const std::vector<double>& x, const std::string& weight) {
  const std::vector<double>& g = w(weight);
  double ss = 0;
  for (double v : x) ss += v * v;
  const double scale = 1.0 / std::sqrt(ss / x.size() + hp_.norm_eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * g[i];
  return y;
}

// Rotates the first rope_dim dimensions of one head: pairs (2i, 2i+1) ("normal", llama2.c/GGUF)
// or (i, i + rope_dim/2) (NeoX), by pos * base^(-2i/rope_dim).
void ReferenceLlama::rope(double* v, int64_t pos) {
  const int64_t half = hp_.rope_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double theta = pos * std::pow(hp_.rope_base, -2.0 * i / hp_.rope_dim);
    const double c = std::cos(theta), s = std::sin(theta);
    const int64_t a = hp_.rope_type == RopeType::NeoX ? i : 2 * i;
    const int64_t b = hp_.rope_type == RopeType::NeoX ? i + half : 2 * i + 1;
    const double x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

std::vector<double> ReferenceLlama::step(int32_t token) {
  const int64_t d = hp_.n_embd, hd = hp_.head_dim, nh = hp_.n_head, nkv = hp_.n_head_kv;
  const std::vector<double>& emb = w("token_embd.weight");
  std::vector<double> x(emb.begin() + token * d, emb.begin() + (token + 1) * d);
  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<double> xb = rmsnorm(x, p + "attn_norm.weight");
    std::vector<double> q = matvec(p + "attn_q.weight", xb);
    std::vector<double> k = matvec(p + "attn_k.weight", xb);
    std::vector<double> v = matvec(p + "attn_v.weight", xb);
    for (int64_t h = 0; h < nh; ++h) rope(&q[h * hd], pos_);
    for (int64_t h = 0; h < nkv; ++h) rope(&k[h * hd], pos_);
    k_[l].insert(k_[l].end(), k.begin(), k.end());
    v_[l].insert(v_[l].end(), v.begin(), v.end());
    std::vector<double> att(nh * hd, 0.0);
    const int64_t n_ctx = pos_ + 1;
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t g = h / (nh / nkv);
      std::vector<double> score(n_ctx);
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_ctx; ++t) {
        double s = 0;
        for (int64_t i = 0; i < hd; ++i) s += q[h * hd + i] * k_[l][(t * nkv + g) * hd + i];
        score[t] = s / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, score[t]);
      }
      double sum = 0;
      for (double& s : score) sum += (s = std::exp(s - mx));
      for (int64_t t = 0; t < n_ctx; ++t)
        for (int64_t i = 0; i < hd; ++i) att[h * hd + i] += score[t] / sum * v_[l][(t * nkv + g) * hd + i];
    }
    std::vector<double> o = matvec(p + "attn_output.weight", att);
    for (int64_t i = 0; i < d; ++i) x[i] += o[i];
    xb = rmsnorm(x, p + "ffn_norm.weight");
    std::vector<double> gate = matvec(p + "ffn_gate.weight", xb);
    std::vector<double> up = matvec(p + "ffn_up.weight", xb);
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    std::vector<double> down = matvec(p + "ffn_down.weight", gate);
    for (int64_t i = 0; i < d; ++i) x[i] += down[i];
  }
  x = rmsnorm(x, "output_norm.weight");
  ++pos_;
  return matvec(m_.weight("output.weight") ? "output.weight" : "token_embd.weight", x);
}

int32_t argmax(const std::vector<double>& v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = static_cast<int32_t>(i);
  return best;
}

}  // namespace semline::testing
