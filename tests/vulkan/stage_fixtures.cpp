#include "vulkan/stage_fixtures.h"

#include <algorithm>
#include <cmath>

#include <semline/codec.h>

namespace semline::vktest {

Vec matvec(const Weight& w, const Vec& x, int64_t row0, int64_t n_out) {
  if (n_out < 0) n_out = w.n_out - row0;
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
                                    const std::vector<int32_t>& seq) {
  std::vector<Vec> q(x.size());
  for (size_t t = 0; t < x.size(); ++t) {
    Qkv p = project(x[t]);
    q[t] = std::move(p.q);
    Vec k = std::move(p.k), v = std::move(p.v);
    if (hp.rope_type != RopeType::None) {
      rope(q[t].data(), hp.n_head, hp, pos[t]);
      rope(k.data(), hp.n_head_kv, hp, pos[t]);
    }
    if (f16_cache) {
      for (double& e : k) e = round_f16(e);
      for (double& e : v) e = round_f16(e);
    }
    kv[seq[t]][pos[t]] = {k, v};
  }
  std::vector<Vec> out(x.size());
  const int64_t hd = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  for (size_t t = 0; t < x.size(); ++t) {
    Vec attn(static_cast<size_t>(hp.n_head * hd), 0.0);
    const auto& cache = kv.at(seq[t]);
    for (int64_t h = 0; h < hp.n_head; ++h) {
      const int64_t g = h / group;
      Vec s(static_cast<size_t>(pos[t] + 1));
      double mx = -INFINITY, sum = 0;
      for (int32_t p = 0; p <= pos[t]; ++p) {
        const Vec& k = cache.at(p).first;
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[g * hd + i];
        s[p] = d / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, s[p]);
      }
      for (double& e : s) sum += e = std::exp(e - mx);
      for (int32_t p = 0; p <= pos[t]; ++p)
        for (int64_t i = 0; i < hd; ++i) attn[h * hd + i] += s[p] / sum * cache.at(p).second[g * hd + i];
    }
    out[t] = plus(matvec(wo, attn), o_bias);
  }
  return out;
}

vk::VulkanBackend& shared_backend(bool subgroups) {
  static vk::VulkanBackend* backends[2] = {nullptr, nullptr};
  vk::VulkanBackend*& b = backends[subgroups ? 1 : 0];
  if (!b) b = make_backend(subgroups).release();
  return *b;
}

Layer::Layer(bool subgroups, RopeType rope_type, Heads h) : be(&shared_backend(subgroups)) {
  hp.arch = "llama";
  hp.n_vocab = 67;
  hp.n_ctx_train = 16;
  hp.n_embd = 64;
  hp.n_ff = 96;
  hp.n_layer = 1;
  hp.n_head = h.n_head;
  hp.n_head_kv = h.n_kv;
  hp.head_dim = h.head_dim;
  hp.rope_dim = h.rope_dim;
  hp.rope_base = 10000.0;
  hp.rope_type = rope_type;
  hp.norm_eps = 1e-5;
}

StageContext Layer::context(std::string station, std::vector<std::pair<std::string, std::string>> tensors,
                            int32_t max_tokens) {
  StageContext c;
  c.backend = be;
  c.model = &model;
  c.hp = &hp;
  c.layer = 0;
  c.station = std::move(station);
  c.tensors = std::move(tensors);
  c.max_batch_tokens = max_tokens;
  return c;
}

std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                             std::map<std::string, ParamValue> params) {
  const StageEntry& e = vulkan_entries().stage(kind, variant);
  for (const ParamSpec& p : e.params) ctx.params.values[p.name] = p.default_value;
  for (auto& [k, v] : params) ctx.params.values[k] = v;
  REQUIRE(e.supports(ctx).empty());
  return e.make_stage(ctx);
}

Cache::Cache(Backend& be, const HParams& hp, DType dt, int32_t block_tokens, int64_t n_blocks) {
  const size_t bytes = static_cast<size_t>(hp.head_dim * hp.n_head_kv * block_tokens * n_blocks) *
                       static_cast<size_t>(dtype_block_bytes(dt));
  kbuf = be.alloc(bytes);
  vbuf = be.alloc(bytes);
  layer.k = make_tensor(dt, {hp.head_dim, hp.n_head_kv, block_tokens, n_blocks}, nullptr, kbuf.get());
  layer.v = make_tensor(dt, {hp.head_dim, hp.n_head_kv, block_tokens, n_blocks}, nullptr, vbuf.get());
  layer.block_tokens = block_tokens;
}

Batch Steps::batch() {
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

Vec added(Backend& be, const Rows& out) {
  const std::vector<float> got = read_back(be, out.dev.t);
  Vec d(got.size());
  for (size_t i = 0; i < got.size(); ++i) d[i] = static_cast<double>(got[i]) - out.host[i];
  return d;
}

void add_attention_weights(Layer& l, DType dt) {
  const int64_t qd = l.hp.n_head * l.hp.head_dim, kd = l.hp.n_head_kv * l.hp.head_dim;
  l.model.add("q", dt, l.hp.n_embd, qd, 0.3f);
  l.model.add("k", dt, l.hp.n_embd, kd, 0.3f);
  l.model.add("v", dt, l.hp.n_embd, kd, 0.3f);
  l.model.add("o", dt, qd, l.hp.n_embd, 0.3f);
}

}  // namespace semline::vktest
