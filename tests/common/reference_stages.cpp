#include "common/reference_stages.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include <semline/codec.h>

namespace semline::testing {

namespace {

// Blocks of 32: d = max|x| / 127 in float, q = x * (1 / d) rounded to nearest even, value q times
// d (rounded to F16 where the block stores it so).
void round_blocks(Vec& x, bool f16_scale) {
  for (size_t b = 0; b + 32 <= x.size(); b += 32) {
    float amax = 0;
    for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(static_cast<float>(x[i])));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const double value = f16_scale ? round_f16(d) : static_cast<double>(d);
    for (size_t i = b; i < b + 32; ++i) x[i] = value * std::nearbyint(static_cast<float>(x[i]) * id);
  }
}

}  // namespace

void round_like_q8_input(Vec& x) { round_blocks(x, false); }

void round_like_kv_q8(Vec& x) { round_blocks(x, true); }

Vec matvec(const Weight& w, const Vec& in, int64_t row0, int64_t n_out) {
  if (n_out < 0) n_out = w.n_out - row0;
  Vec x = in;
  if (w.q8_input) round_like_q8_input(x);
  Vec y(static_cast<size_t>(n_out), 0.0);
  for (int64_t j = 0; j < n_out; ++j)
    for (int64_t i = 0; i < w.n_in; ++i) y[j] += w.value[(row0 + j) * w.n_in + i] * x[i];
  return y;
}

Vec rmsnorm(const Vec& x, const Weight& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w.value[i];
  return y;
}

void rope(double* v, int64_t heads, const HParams& hp, int32_t pos) {
  const int64_t half = hp.rope_dim / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i) {
      const double theta = pos * std::pow(hp.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(hp.rope_dim));
      double* p = v + h * hp.head_dim;
      double& a = hp.rope_type == RopeType::NeoX ? p[i] : p[2 * i];
      double& b = hp.rope_type == RopeType::NeoX ? p[i + half] : p[2 * i + 1];
      const double x0 = a, x1 = b;
      a = x0 * std::cos(theta) - x1 * std::sin(theta);
      b = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
}

double round_f16(double v) { return f16_to_f32(f32_to_f16(static_cast<float>(v))); }

Mask causal_mask() {
  return [](int32_t, int32_t) { return true; };
}

Mask sliding_mask(int32_t window) {
  return [window](int32_t q, int32_t k) { return q - window < k; };
}

Mask block_sparse_mask(int32_t block, int32_t local, int32_t global, int32_t stride) {
  return [=](int32_t q, int32_t k) {
    const int32_t b = q / block, j = k / block;
    return b - local < j || j < global || (stride > 0 && j % stride == stride - 1);
  };
}

Vec plus(Vec a, const Weight* b) {
  if (b)
    for (size_t i = 0; i < a.size(); ++i) a[i] += b->value[i];
  return a;
}

Project separate(const Weight& wq, const Weight& wk, const Weight& wv, const Weight* bq, const Weight* bk,
                 const Weight* bv) {
  return [q = &wq, k = &wk, v = &wv, bq, bk, bv](const Vec& x) {
    return Qkv{plus(matvec(*q, x), bq), plus(matvec(*k, x), bk), plus(matvec(*v, x), bv)};
  };
}

Project fused(const Weight& wqkv, const Weight* bias, int64_t qd, int64_t kd) {
  return [w = &wqkv, bias, qd, kd](const Vec& x) {
    const Vec y = plus(matvec(*w, x), bias);
    return Qkv{Vec(y.begin(), y.begin() + qd), Vec(y.begin() + qd, y.begin() + qd + kd), Vec(y.begin() + qd + kd, y.end())};
  };
}

std::vector<Vec> RefAttention::step(const std::vector<Vec>& x, const std::vector<int32_t>& pos,
                                    const std::vector<int>& seq) {
  std::vector<Vec> q(x.size());
  for (size_t t = 0; t < x.size(); ++t) {
    Qkv p = project(x[t]);
    q[t] = std::move(p.q);
    Vec k = std::move(p.k), v = std::move(p.v);
    if (hp.rope_type != RopeType::None) {
      rope(q[t].data(), hp.n_head, hp, pos[t]);
      rope(k.data(), hp.n_head_kv, hp, pos[t]);
    }
    if (cache == DType::F16) {
      for (double& e : k) e = round_f16(e);
      for (double& e : v) e = round_f16(e);
    } else if (cache == DType::Q8_0) {  // each kv head's row in its own blocks
      for (Vec* r : {&k, &v})
        for (int64_t g = 0; g < hp.n_head_kv; ++g) {
          Vec row(r->begin() + g * hp.head_dim, r->begin() + (g + 1) * hp.head_dim);
          round_like_kv_q8(row);
          std::copy(row.begin(), row.end(), r->begin() + g * hp.head_dim);
        }
    }
    kv[seq[t]][pos[t]] = {k, v};
  }
  std::vector<Vec> out(x.size());
  const int64_t hd = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  for (size_t t = 0; t < x.size(); ++t) {
    Vec attn(static_cast<size_t>(hp.n_head * hd), 0.0);
    const auto& seq_kv = kv.at(seq[t]);  // position -> (keys, values)
    const double scale = hp.extra_or("attention_scale", 1.0 / std::sqrt(static_cast<double>(hd)));
    for (int64_t h = 0; h < hp.n_head; ++h) {
      const int64_t g = h / group;
      Vec qh(q[t].begin() + h * hd, q[t].begin() + (h + 1) * hd);
      double after = scale;  // the scale still to apply to a score
      if (cache == DType::Q8_0 && q8_query) {
        for (int64_t b = 0; b < hd; b += 32) {
          double amax = 0;
          for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(qh[i] * scale));
          const double d = amax / 127;
          for (int64_t i = b; i < b + 32; ++i) qh[i] = d > 0 ? d * std::nearbyint(qh[i] * scale / d) : 0.0;
        }
        after = 1;
      }
      std::vector<std::pair<int32_t, double>> s;  // (key position, score) of the keys the mask keeps
      double mx = -INFINITY, sum = 0;
      for (int32_t p = 0; p <= pos[t]; ++p) {
        if (!mask(pos[t], p)) continue;
        const Vec& k = seq_kv.at(p).first;
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += qh[i] * k[g * hd + i];
        double score = d * after;
        if (const double cap = hp.extra_or("attn_logit_softcap", 0.0); cap > 0) score = cap * std::tanh(score / cap);
        s.emplace_back(p, score);
        mx = std::max(mx, s.back().second);
      }
      for (auto& e : s) sum += e.second = std::exp(e.second - mx);
      for (const auto& [p, e] : s)
        for (int64_t i = 0; i < hd; ++i) attn[h * hd + i] += e / sum * seq_kv.at(p).second[g * hd + i];
    }
    out[t] = plus(matvec(wo, attn), o_bias);
  }
  return out;
}

void add_moe_weights(FakeModel& model, const HParams& hp, DType dt) {
  model.add("router", dt, hp.n_embd, hp.n_expert, 0.3f);
  model.add_experts("gate_exps", dt, hp.n_embd, hp.n_ff, hp.n_expert, 0.3f);
  model.add_experts("up_exps", dt, hp.n_embd, hp.n_ff, hp.n_expert, 0.3f);
  model.add_experts("down_exps", dt, hp.n_ff, hp.n_embd, hp.n_expert, 0.3f);
}

std::vector<int64_t> choose_experts(const Vec& logits, int64_t n_used) {
  std::vector<int64_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  order.resize(static_cast<size_t>(n_used));
  return order;
}

bool router_separates(const Weight& router, const Vec& x, int64_t n_used) {
  Vec logits = matvec(router, x);
  std::sort(logits.begin(), logits.end(), std::greater<>());
  const size_t k = static_cast<size_t>(n_used);
  return k >= logits.size() || logits[k - 1] - logits[k] >= 1e-4;
}

Vec moe_reference(const FakeModel& model, const HParams& hp, const Vec& x) {
  const Vec logits = matvec(model.values("router"), x);
  const double mx = *std::max_element(logits.begin(), logits.end());
  Vec p(logits.size());
  double all = 0;
  for (size_t e = 0; e < p.size(); ++e) all += p[e] = std::exp(logits[e] - mx);
  for (double& v : p) v /= all;
  const std::vector<int64_t> chosen = choose_experts(logits, hp.n_expert_used);
  double kept = 0;
  for (int64_t e : chosen) kept += p[e];
  const int64_t F = hp.n_ff, D = hp.n_embd;
  const Weight &gate = model.values("gate_exps"), &up = model.values("up_exps"), &down = model.values("down_exps");
  Vec y(static_cast<size_t>(D), 0.0);
  for (int64_t e : chosen) {
    const Vec g = matvec(gate, x, e * F, F), u = matvec(up, x, e * F, F);
    Vec h(g.size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
    const Vec d = matvec(down, h, e * D, D);
    for (int64_t i = 0; i < D; ++i) y[i] += p[e] / kept * d[i];
  }
  return y;
}

Batch StepData::batch() {
  views.clear();
  for (auto& t : tables) views.push_back(SeqView{0, t.data(), static_cast<int32_t>(t.size())});
  if (tokens.size() < pos.size()) tokens.resize(pos.size(), 0);
  Batch b;
  b.n_tokens = static_cast<int32_t>(pos.size());
  b.tokens = tokens.data();
  b.positions = pos.data();
  b.seq = seq.data();
  b.n_seqs = static_cast<int32_t>(views.size());
  b.seqs = views.data();
  b.n_outputs = static_cast<int32_t>(outputs.size());
  b.output_rows = outputs.data();
  return b;
}

}  // namespace semline::testing
