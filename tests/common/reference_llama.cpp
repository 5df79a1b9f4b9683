#include "common/reference_llama.h"
#include "common/reference_model.h"
#include "common/reference_stages.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <semline/codec.h>

namespace semline::testing {

HParams read_llama_hparams(const ModelView& m) {
  const std::string arch(need_meta(m, "general.architecture").str);
  HParams hp = read_common_hparams(m, arch);
  const auto meta = [&](const char* key) { return m.meta(arch + "." + key); };
  const MetaValue* kv = meta("attention.head_count_kv");
  hp.n_head_kv = kv ? static_cast<int64_t>(kv->u) : hp.n_head;
  const MetaValue* key_length = meta("attention.key_length");
  if (key_length) hp.head_dim = static_cast<int64_t>(key_length->u);
  const MetaValue* rd = meta("rope.dimension_count");
  hp.rope_dim = rd ? static_cast<int64_t>(rd->u) : hp.head_dim;
  const MetaValue* base = meta("rope.freq_base");
  hp.rope_base = base ? base->f : 10000.0;
  hp.rope_type = arch == "llama" ? RopeType::Normal : RopeType::NeoX;
  const MetaValue* scaling = meta("rope.scaling.type");
  if (scaling && scaling->str == "linear") hp.rope_freq_scale = 1.0 / need_meta(m, arch + ".rope.scaling.factor").f;
  const MetaValue* rms_eps = meta("attention.layer_norm_rms_epsilon");
  hp.norm_eps = rms_eps ? rms_eps->f : need_meta(m, arch + ".attention.layer_norm_epsilon").f;
  if (arch == "starcoder2" || arch == "gptneox") hp.ffn_act = Activation::GeluTanh;
  const MetaValue* parallel = meta("use_parallel_residual");
  hp.parallel_residual = parallel && parallel->u != 0;
  const MetaValue* experts = meta("expert_count");
  const MetaValue* used = meta("expert_used_count");
  hp.n_expert = experts ? static_cast<int64_t>(experts->u) : 0;
  hp.n_expert_used = used ? static_cast<int64_t>(used->u) : 0;
  const MetaValue* window = meta("attention.sliding_window");
  hp.sliding_window = window ? static_cast<int64_t>(window->u) : 0;
  if (arch == "gemma2") {  // as llama.cpp's gemma2 reads it, defaults included
    hp.ffn_act = Activation::GeluTanh;
    hp.sliding_window = window ? hp.sliding_window : 4096;
    const MetaValue* period = meta("attention.sliding_window_pattern");
    hp.extra["swa_period"] = period ? static_cast<double>(period->u) : 2.0;
    const MetaValue* attn_cap = meta("attn_logit_softcapping");
    const MetaValue* final_cap = meta("final_logit_softcapping");
    hp.extra["attn_logit_softcap"] = attn_cap ? attn_cap->f : 50.0;
    hp.extra["final_logit_softcap"] = final_cap ? final_cap->f : 30.0;
    hp.extra["embedding_scale"] = std::sqrt(static_cast<float>(hp.n_embd));
    // Gemma 2 27B (46 layers) scales by its query_pre_attn_scalar, n_embd / n_head.
    const int64_t scalar = hp.n_layer == 46 ? hp.n_embd / hp.n_head : hp.head_dim;
    hp.extra["attention_scale"] = 1.0f / std::sqrt(static_cast<float>(scalar));
  }
  return hp;
}

KeyMask sliding_window_mask(int64_t window) {
  return [window](int64_t q, int64_t k) { return q - window < k; };
}

ReferenceLlama::ReferenceLlama(const ModelView& m, const HParams& hp, ReferenceOptions opt)
    : m_(m), w(m), hp_(hp), opt_(std::move(opt)), k_(hp.n_layer), v_(hp.n_layer) {
  // llama.cpp's rule: with a period P, layer L is windowed when L % P < P - 1; without, all are.
  const int64_t period = static_cast<int64_t>(hp.extra_or("swa_period", 0));
  if (hp.sliding_window > 0)
    for (int64_t l = 0; l < hp.n_layer; ++l)
      model_masks_.push_back(period == 0 || l % period < period - 1 ? sliding_window_mask(hp.sliding_window) : KeyMask{});
}

std::vector<double> ReferenceLlama::matvec(const std::string& name, const std::vector<double>& in, int64_t row0,
                                           int64_t rows) {
  const std::vector<double>& W = w(name);
  std::vector<double> x = in;
  const DType dt = m_.weight(name)->dtype;
  if (opt_.quantize_inputs && (dt == DType::Q8_0 || dt == DType::Q4_0)) round_like_q8_input(x);
  const size_t n_in = x.size();
  const size_t n_out = rows < 0 ? W.size() / n_in - static_cast<size_t>(row0) : static_cast<size_t>(rows);
  std::vector<double> y(n_out, 0.0);
  for (size_t o = 0; o < n_out; ++o) {
    const double* wr = W.data() + (static_cast<size_t>(row0) + o) * n_in;
    double s = 0;
    for (size_t i = 0; i < n_in; ++i) s += wr[i] * x[i];
    y[o] = s;
  }
  return y;
}

double ReferenceLlama::gelu(double u) const {
  return hp_.ffn_act == Activation::Gelu ? 0.5 * u * (1.0 + std::erf(u / std::sqrt(2.0)))
                                         : 0.5 * u * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u)));
}

// down(act(gate x) * up x), act silu or (Gemma 2's GeGLU) the model's GELU: the dense tensors, or
// expert `expert` of the stacked ones; without a gate (starcoder2), down(gelu(up x + b) + b).
std::vector<double> ReferenceLlama::swiglu(const std::string& p, const std::vector<double>& x, int64_t expert) {
  const bool dense = expert < 0;
  const Tensor* up_t = m_.weight(p + "ffn_up.weight");
  if (dense && up_t && up_t->ne[1] == 2 * hp_.n_ff) {  // Phi-3: ffn_up holds gate | up
    std::vector<double> gate_up = matvec(p + "ffn_up.weight", x);
    std::vector<double> h(static_cast<size_t>(hp_.n_ff));
    for (size_t i = 0; i < h.size(); ++i) h[i] = gate_up[i] / (1.0 + std::exp(-gate_up[i])) * gate_up[i + h.size()];
    return matvec(p + "ffn_down.weight", h);
  }
  if (dense && !m_.weight(p + "ffn_gate.weight")) {
    std::vector<double> up = affine(p + "ffn_up.weight", x);
    for (double& u : up) u = gelu(u);
    return affine(p + "ffn_down.weight", up);
  }
  const int64_t f = hp_.n_ff, d = hp_.n_embd, e = dense ? 0 : expert;
  std::vector<double> gate = matvec(p + (dense ? "ffn_gate.weight" : "ffn_gate_exps.weight"), x, e * f, f);
  std::vector<double> up = matvec(p + (dense ? "ffn_up.weight" : "ffn_up_exps.weight"), x, e * f, f);
  for (size_t i = 0; i < gate.size(); ++i)
    gate[i] = (hp_.ffn_act == Activation::Silu ? gate[i] / (1.0 + std::exp(-gate[i])) : gelu(gate[i])) * up[i];
  return matvec(p + (dense ? "ffn_down.weight" : "ffn_down_exps.weight"), gate, e * d, d);
}

std::vector<double> ReferenceLlama::moe(const std::string& p, const std::vector<double>& x) {
  const std::vector<double> logits = matvec(p + "ffn_gate_inp.weight", x);
  const double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> prob(logits.size());
  double total = 0;
  for (size_t e = 0; e < prob.size(); ++e) total += prob[e] = std::exp(logits[e] - mx);
  std::vector<int64_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  const size_t k = static_cast<size_t>(hp_.n_expert_used);
  if (k < order.size()) min_router_gap_ = std::min(min_router_gap_, logits[order[k - 1]] - logits[order[k]]);
  order.resize(k);
  double kept = 0;
  for (int64_t e : order) kept += prob[e] / total;
  std::vector<double> y(x.size(), 0.0);
  for (int64_t e : order) {
    const std::vector<double> out = swiglu(p, x, e);
    for (size_t i = 0; i < y.size(); ++i) y[i] += prob[e] / total / kept * out[i];
  }
  return y;
}

std::vector<double> ReferenceLlama::rmsnorm(const std::vector<double>& x, const std::string& weight) {
  const std::vector<double>& g = w(weight);
  const std::string shift = weight.substr(0, weight.size() - std::string(".weight").size()) + ".bias";
  const bool layer = m_.weight(shift) != nullptr;  // LayerNorm: the mean taken out, a shift added
  double mean = 0;
  if (layer) {
    for (double v : x) mean += v;
    mean /= static_cast<double>(x.size());
  }
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  const double scale = 1.0 / std::sqrt(ss / x.size() + hp_.norm_eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) * scale * g[i] + (layer ? w(shift)[i] : 0.0);
  return y;
}

void ReferenceLlama::head_norm(double* v, const std::string& weight) {
  const std::vector<double>& g = w(weight);
  const int64_t hd = hp_.head_dim;
  double ss = 0;
  for (int64_t i = 0; i < hd; ++i) ss += v[i] * v[i];
  const double scale = 1.0 / std::sqrt(ss / static_cast<double>(hd) + hp_.norm_eps);
  for (int64_t i = 0; i < hd; ++i) v[i] *= scale * g[i];
}

std::vector<double> ReferenceLlama::affine(const std::string& weight, const std::vector<double>& x) {
  std::vector<double> y = matvec(weight, x);
  const std::string bias = weight.substr(0, weight.size() - std::string(".weight").size()) + ".bias";
  if (m_.weight(bias)) {
    const std::vector<double>& b = w(bias);
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
  }
  return y;
}

// Rotates the first rope_dim dimensions of one head: pairs (2i, 2i+1) ("normal", llama2.c/GGUF)
// or (i, i + rope_dim/2) (NeoX), by pos * freq_scale * base^(-2i/rope_dim) / rope_freqs[i].
void ReferenceLlama::rope(double* v, int64_t pos) {
  const int64_t half = hp_.rope_dim / 2;
  const std::vector<double>* divisors = m_.weight("rope_freqs.weight") ? &w("rope_freqs.weight") : nullptr;
  for (int64_t i = 0; i < half; ++i) {
    const double theta = pos * hp_.rope_freq_scale * std::pow(hp_.rope_base, -2.0 * i / hp_.rope_dim) /
                         (divisors ? (*divisors)[i] : 1.0);
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
  for (double& v : x) v *= hp_.extra_or("embedding_scale", 1.0);
  const double attention_scale = hp_.extra_or("attention_scale", 1.0 / std::sqrt(static_cast<double>(hd)));
  const double attn_cap = hp_.extra_or("attn_logit_softcap", 0.0), final_cap = hp_.extra_or("final_logit_softcap", 0.0);
  // Gemma 2's sandwich: each sub-layer's result is normed (post_*_norm) before it is added.
  auto post_norm = [&](std::vector<double> y, const std::string& name) { return m_.weight(name) ? rmsnorm(y, name) : y; };
  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<double> xb = rmsnorm(x, p + "attn_norm.weight");
    std::vector<double> q, k, v;
    if (m_.weight(p + "attn_qkv.weight")) {  // Phi-3: one map, q | k | v
      const std::vector<double> qkv = affine(p + "attn_qkv.weight", xb);
      q.assign(qkv.begin(), qkv.begin() + nh * hd);
      k.assign(qkv.begin() + nh * hd, qkv.begin() + (nh + nkv) * hd);
      v.assign(qkv.begin() + (nh + nkv) * hd, qkv.end());
    } else {
      q = affine(p + "attn_q.weight", xb);
      k = affine(p + "attn_k.weight", xb);
      v = affine(p + "attn_v.weight", xb);
    }
    if (m_.weight(p + "attn_q_norm.weight")) {  // qwen3: each head RMS-normed before the rotation
      for (int64_t h = 0; h < nh; ++h) head_norm(&q[h * hd], p + "attn_q_norm.weight");
      for (int64_t h = 0; h < nkv; ++h) head_norm(&k[h * hd], p + "attn_k_norm.weight");
    }
    for (int64_t h = 0; h < nh; ++h) rope(&q[h * hd], pos_);
    for (int64_t h = 0; h < nkv; ++h) rope(&k[h * hd], pos_);
    if (opt_.kv_cache == DType::F16) {
      for (double& e : k) e = round_f16(e);
      for (double& e : v) e = round_f16(e);
    } else if (opt_.kv_cache == DType::Q8_0) {
      for (std::vector<double>* r : {&k, &v})
        for (int64_t h = 0; h < nkv; ++h) {
          std::vector<double> row(r->begin() + h * hd, r->begin() + (h + 1) * hd);
          round_like_kv_q8(row);
          std::copy(row.begin(), row.end(), r->begin() + h * hd);
        }
    }
    k_[l].insert(k_[l].end(), k.begin(), k.end());
    v_[l].insert(v_[l].end(), v.begin(), v.end());
    std::vector<double> att(nh * hd, 0.0);
    const int64_t n_ctx = pos_ + 1;
    const KeyMask* mask = l < static_cast<int64_t>(opt_.masks.size()) && opt_.masks[l] ? &opt_.masks[l]
                          : l < static_cast<int64_t>(model_masks_.size()) && model_masks_[l] ? &model_masks_[l]
                                                                                              : nullptr;
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t g = h / (nh / nkv);
      std::vector<double> score(n_ctx, -INFINITY);  // masked keys keep -inf: weight 0
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_ctx; ++t) {
        if (mask && !(*mask)(pos_, t)) continue;
        double s = 0;
        for (int64_t i = 0; i < hd; ++i) s += q[h * hd + i] * k_[l][(t * nkv + g) * hd + i];
        score[t] = s * attention_scale;
        if (attn_cap > 0) score[t] = attn_cap * std::tanh(score[t] / attn_cap);
        mx = std::max(mx, score[t]);
      }
      double sum = 0;
      for (double& s : score) sum += (s = std::exp(s - mx));
      for (int64_t t = 0; t < n_ctx; ++t)
        for (int64_t i = 0; i < hd; ++i) att[h * hd + i] += score[t] / sum * v_[l][(t * nkv + g) * hd + i];
    }
    const std::vector<double> o = post_norm(affine(p + "attn_output.weight", att), p + "post_attention_norm.weight");
    // A parallel residual (gptneox) norms the block's input for the feed-forward too.
    const std::vector<double> block_in = x;
    for (int64_t i = 0; i < d; ++i) x[i] += o[i];
    xb = rmsnorm(hp_.parallel_residual ? block_in : x, p + "ffn_norm.weight");
    const std::vector<double> down =
        post_norm(hp_.n_expert > 0 ? moe(p, xb) : swiglu(p, xb, -1), p + "post_ffw_norm.weight");
    for (int64_t i = 0; i < d; ++i) x[i] += down[i];
  }
  x = rmsnorm(x, "output_norm.weight");
  ++pos_;
  std::vector<double> logits = matvec(m_.weight("output.weight") ? "output.weight" : "token_embd.weight", x);
  if (final_cap > 0)
    for (double& v : logits) v = final_cap * std::tanh(v / final_cap);
  return logits;
}

int32_t argmax(const std::vector<double>& v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = static_cast<int32_t>(i);
  return best;
}

}  // namespace semline::testing
