#include "ops/station_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <semline/error.h>

#include "ops/attention_cores.h"
#include "ops/linear.h"

namespace semline::cpu {
namespace {

using stations::BatchIndex;
using stations::NormKind;
using stations::Product;

struct CpuLinear final : stations::LinearWeight {
  Linear w;
};
struct CpuExperts final : stations::ExpertWeights {
  std::vector<Linear> e;  // one map per expert, at its offset in the stack
};
// The routing of the last step, sized once: slots grouped by expert (the e-th expert computed here
// owns slots [start[e], start[e+1]); next[e] is the next one to fill while grouping) with their
// token and weight; per token its chosen experts and their weights in rank order, and their slots
// (-1: an expert computed elsewhere).
struct CpuRouting final : stations::ExpertRouting {
  std::vector<int32_t> start, next, token, chosen, slot_of;
  std::vector<float> weight;
  std::vector<double> chosen_w;
  int32_t used_experts = 0;
  int64_t m = 0;
  int64_t slots() const { return start.back(); }
  bool here(int32_t e) const { return e >= first && e < first + count; }
};
struct CpuTable final : stations::RowTable {
  const char* data = nullptr;
  size_t row_stride = 0;
};
struct CpuRope final : stations::RopeStore {
  stations::AttentionShape a;
  stations::HeadNorms norms;
  mutable std::vector<float> cs;  // per worker: rope_dim floats (cos, sin pairs)
};
struct CpuNorm final : stations::NormWeights {
  std::vector<float> scale_values, shift_values;  // shift: empty for RMSNorm
};

const Linear& linear_of(const stations::LinearWeight& w) { return static_cast<const CpuLinear&>(w).w; }
float* rows_of(const Tensor& t) { return static_cast<float*>(t.host); }
int64_t stride_of(const Tensor& t) { return t.nb[1] / 4; }
size_t row_stride_of(const Tensor& view) { return static_cast<size_t>(view.ne[1] > 1 ? view.nb[1] : view.row_bytes()); }

// One head of q or k RMS-normalised in place (the sum of squares in double: a head is short and
// this is not where the time goes).
void head_norm(float* x, const float* scale, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float s = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * s * scale[i];
}

// Rows per pool chunk for row-by-row work over rows of n values.
int64_t row_grain(int64_t n) { return n >= 4096 ? 4 : 16; }

class StationKernels final : public stations::Kernels {
 public:
  explicit StationKernels(CpuBackend& be) : be_(be), kern_(be.kernels()) {}

  void reserve_scratch(size_t bytes) override { be_.workspace().reserve(bytes); }
  void reserve_tokens(int32_t) override {}  // the cpu reads the step's host arrays in place
  Tensor scratch_rows(size_t offset, int64_t width, int64_t rows) override {
    return make_tensor(DType::F32, {width, rows}, be_.workspace().data() + offset);
  }
  void check_memory(const Tensor& t, const char* what, const std::string& label) const override {
    if (!t.host)
      throw Error(label + ": " + what + " " + tensor_shape_string(t) + " has no host address; the cpu stages read host memory");
  }
  void begin(const Step&, const std::string&) override {}  // work runs at once, on the caller's thread and pool

  std::unique_ptr<stations::LinearWeight> bind_linear(const StageContext&, std::string_view, const Tensor& view,
                                                      std::vector<float> bias, int64_t max_rows) override {
    auto l = std::make_unique<CpuLinear>();
    l->dtype = view.dtype;
    l->n_in = view.ne[0];
    l->n_out = view.ne[1];
    l->bias = !bias.empty();
    l->w = Linear::over(be_, view.dtype, l->n_in, l->n_out, static_cast<const char*>(view.host), row_stride_of(view));
    l->w.bias = std::move(bias);
    if (l->w.quantized()) reserve_quantised(max_rows, l->n_in);
    return l;
  }

  std::unique_ptr<stations::RowTable> bind_table(const StageContext&, std::string_view, const Tensor& view) override {
    auto t = std::make_unique<CpuTable>();
    t->dtype = view.dtype;
    t->width = view.ne[0];
    t->rows = view.ne[1];
    t->data = static_cast<const char*>(view.host);  // zero copy: the rows a step reads, read in place
    t->row_stride = row_stride_of(view);
    return t;
  }

  std::unique_ptr<stations::NormWeights> bind_norm(const std::string&, std::vector<float> scale,
                                                   std::vector<float> shift) override {
    auto w = std::make_unique<CpuNorm>();
    w->n = static_cast<int64_t>(scale.size());
    w->shift = !shift.empty();
    w->scale_values = std::move(scale);
    w->shift_values = std::move(shift);
    return w;
  }

  void linear(const Step&, const Tensor& x, std::span<const Product> products, int64_t m) override {
    if (products.empty() || products.size() > 3)
      throw Error("cpu kernels: linear takes 1 to 3 products, got " + std::to_string(products.size()));
    if (m == 0) return;
    bool quantized = false;
    for (const Product& p : products) quantized = quantized || linear_of(*p.w).quantized();
    Workspace::Lease lease(quant_);
    QRows q{};
    Rows in{rows_of(x), stride_of(x), nullptr};
    if (quantized && prepared_rows_ == x.host && prepared_m_ == m) in.q = &prepared_q_;  // made by linear_act
    else in = input_rows(x, m, quantized, q);
    prepared_rows_ = nullptr;
    MatOp ops[3];
    for (size_t i = 0; i < products.size(); ++i)
      ops[i] = MatOp{&linear_of(*products[i].w), in, rows_of(products[i].y), stride_of(products[i].y),
                     products[i].accumulate};
    run_matmuls(be_, ops, static_cast<int>(products.size()), m);
  }

  void linear_act(const Step&, const Tensor& x, const stations::LinearWeight* gate, const stations::LinearWeight& up,
                  Activation act, const Tensor& h, const Tensor& tmp, int64_t m,
                  const stations::LinearWeight* next) override {
    prepared_rows_ = nullptr;
    if (m == 0) return;
    const Linear& u_w = linear_of(up);
    Workspace::Lease lease(quant_);
    QRows q{};
    const Rows in = input_rows(x, m, u_w.quantized() || (gate && linear_of(*gate).quantized()), q);
    // h quantised for the next product chunk by chunk, while the chunk is in cache: no pass of its own.
    const bool prepare = next && linear_of(*next).quantized();
    QRows hq{};
    if (prepare) hq = prepared_q_ = prepared_plan(m, u_w.n_out);
    float* hp = rows_of(h);
    const int64_t hs = stride_of(h);
    // Gated, up goes to tmp and the gate to h, which silu_mul then overwrites; else up goes to h
    // and the activation runs in place: each chunk of columns right after the products made it.
    float* up_out = gate ? rows_of(tmp) : hp;
    const int64_t up_stride = gate ? stride_of(tmp) : hs;
    const MatOp ops[2] = {{&u_w, in, up_out, up_stride, false}, {gate ? &linear_of(*gate) : nullptr, in, hp, hs, false}};
    auto gelu = act == Activation::Gelu ? kern_.gelu : kern_.gelu_tanh;
    run_matmuls_then(be_, ops, gate ? 2 : 1, m, [&](int64_t j0, int64_t j1) {
      for (int64_t r = 0; r < m; ++r) {
        float* hr = hp + r * hs + j0;
        if (gate && act == Activation::Silu) {
          kern_.silu_mul(hr, up_out + r * up_stride + j0, hr, j1 - j0);
        } else {
          gelu(hr, hr, j1 - j0);
          if (gate) {  // GeGLU: gelu(gate x) * (up x)
            const float* u = up_out + r * up_stride + j0;
            for (int64_t j = 0; j < j1 - j0; ++j) hr[j] *= u[j];
          }
        }
        if (prepare) quantize_chunk(hq, r, hr, j0, j1);
      }
    });
    if (prepare) prepared_rows_ = hp, prepared_m_ = m;
  }

  void norm(const Step&, NormKind kind, const stations::NormWeights& w, float eps, const Tensor& x, const Tensor& y,
            int64_t m, bool accumulate) override {
    const CpuNorm& nw = static_cast<const CpuNorm&>(w);
    const float* xp = rows_of(x);
    float* yp = rows_of(y);
    const int64_t xs = stride_of(x), ys = stride_of(y), n = nw.n;
    be_.pool().run(m, row_grain(n), [&](int64_t r0, int64_t r1, int) {
      std::vector<float> row(accumulate ? static_cast<size_t>(n) : 0);  // a row normed, then added
      for (int64_t r = r0; r < r1; ++r) {
        float* out = accumulate ? row.data() : yp + r * ys;
        if (kind == NormKind::Layer)
          kern_.layer_norm(xp + r * xs, nw.scale_values.data(), nw.shift_values.data(), out, n, eps);
        else kern_.rms_norm(xp + r * xs, nw.scale_values.data(), out, n, eps);
        if (accumulate) kern_.add(out, yp + r * ys, n);
      }
    });
  }

  void scale(const Step&, const Tensor& x, int64_t m, float s) override {
    float* xp = rows_of(x);
    const int64_t xs = stride_of(x), n = x.ne[0];
    be_.pool().run(m, row_grain(n), [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) kern_.scale(xp + r * xs, s, n);
    });
  }

  void softcap(const Step&, const Tensor& x, int64_t m, float cap) override {
    float* xp = rows_of(x);
    const int64_t xs = stride_of(x), n = x.ne[0];
    be_.pool().run(m, row_grain(n), [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r)
        for (float* v = xp + r * xs; v < xp + r * xs + n; ++v) *v = cap * std::tanh(*v / cap);
    });
  }

  void gather_table(const Step& step, const stations::RowTable& table, BatchIndex index, const Tensor& out,
                    bool accumulate) override {
    const CpuTable& t = static_cast<const CpuTable&>(table);
    const Batch& b = step.batch;
    const int32_t* ids = index == BatchIndex::Tokens ? b.tokens : b.positions;
    float* o = rows_of(out);
    const int64_t os = stride_of(out), n = t.width;
    be_.pool().run(b.n_tokens, row_grain(n), [&](int64_t r0, int64_t r1, int) {
      std::vector<float> row(accumulate && t.dtype != DType::F32 ? static_cast<size_t>(n) : 0);
      for (int64_t r = r0; r < r1; ++r) {
        const char* src = t.data + static_cast<size_t>(ids[r]) * t.row_stride;
        float* dst = o + r * os;
        if (!accumulate) kern_.dequantize_row(t.dtype, src, dst, n);
        else if (t.dtype == DType::F32) kern_.add(reinterpret_cast<const float*>(src), dst, n);
        else {
          kern_.dequantize_row(t.dtype, src, row.data(), n);
          kern_.add(row.data(), dst, n);
        }
      }
    });
  }

  void gather_outputs(const Step& step, const Tensor& x, const Tensor& out) override {
    const Batch& b = step.batch;
    const size_t bytes = static_cast<size_t>(x.ne[0]) * 4;
    for (int32_t i = 0; i < b.n_outputs; ++i)
      std::memcpy(rows_of(out) + i * stride_of(out), rows_of(x) + b.output_rows[i] * stride_of(x), bytes);
  }

  void check_kv(const KvLayer& kv, const std::string& label) const override {
    if (!kv.k.host || !kv.v.host)
      throw Error(label + ": the KV cache " + tensor_shape_string(kv.k) + " is not in host memory; the cpu stages read it there");
  }

  std::unique_ptr<stations::RopeStore> bind_rope_store(const stations::AttentionShape& a,
                                                       const stations::HeadNorms& norms) override {
    auto r = std::make_unique<CpuRope>();
    r->a = a;
    r->norms = norms;
    r->cs.resize(static_cast<size_t>(be_.host_threads() * a.rope_dim));
    return r;
  }

  void rope_store(const Step& step, const stations::RopeStore& rope, const Tensor& qkv, int64_t m) override {
    const CpuRope& r = static_cast<const CpuRope&>(rope);
    const stations::AttentionShape& a = r.a;
    const Batch& b = step.batch;
    const KvPool kc = kv_pool(step.kv->k), vc = kv_pool(step.kv->v);
    const int32_t bt = step.kv->block_tokens;
    const int64_t qd = a.q_width(), kd = a.kv_width(), hd = a.head_dim, stride = stride_of(qkv);
    float* rows = rows_of(qkv);
    be_.pool().run(m, 8, [&](int64_t t0, int64_t t1, int worker) {
      float* cs = r.cs.data() + worker * a.rope_dim;
      for (int64_t t = t0; t < t1; ++t) {
        const int32_t pos = b.positions[t];
        float* qt = rows + t * stride;
        float* kt = qt + qd;
        const float* vt = kt + kd;
        if (r.norms.on()) {
          for (int64_t h = 0; h < a.n_head; ++h) head_norm(qt + h * hd, r.norms.q.data(), hd, r.norms.eps);
          for (int64_t h = 0; h < a.n_kv; ++h) head_norm(kt + h * hd, r.norms.k.data(), hd, r.norms.eps);
        }
        if (a.rope_dim > 0) {
          // Angles in double: pos * theta_i loses digits in float once positions reach the thousands.
          for (int64_t i = 0; i < a.rope_dim / 2; ++i) {
            const double angle = pos * a.inv_freq[i];
            cs[2 * i] = static_cast<float>(std::cos(angle));
            cs[2 * i + 1] = static_cast<float>(std::sin(angle));
          }
          kern_.rope(qt, a.n_head, hd, a.rope_dim, cs, a.rope_type);
          kern_.rope(kt, a.n_kv, hd, a.rope_dim, cs, a.rope_type);
        }
        const SeqView& sv = b.seqs[b.seq[t]];
        for (int64_t g = 0; g < a.n_kv; ++g) {
          char* kr = const_cast<char*>(kc.row_at(sv, pos, bt, g));
          char* vr = const_cast<char*>(vc.row_at(sv, pos, bt, g));
          store_kv(kc.dtype, kt + g * hd, kr, hd);
          store_kv(vc.dtype, vt + g * hd, vr, hd);
        }
      }
    });
  }

  // One head's key or value row into the cache, in its dtype.
  void store_kv(DType t, const float* x, char* row, int64_t hd) const {
    if (t == DType::Q8_0) kern_.to_q8_0(x, row, hd);
    else if (t == DType::F16) kern_.to_f16(x, reinterpret_cast<uint16_t*>(row), hd);
    else std::memcpy(row, x, static_cast<size_t>(hd) * 4);
  }

  // Every mask runs on the tiled core; dense is the reference.
  std::unique_ptr<stations::AttentionCore> bind_attention(const StageContext& ctx, const stations::AttentionShape& a,
                                                          const stations::CoreSpec& spec) override {
    if (spec.kind == stations::CoreKind::Dense) return std::make_unique<DenseCore>(be_, ctx, a, spec);
    return std::make_unique<TiledCore>(be_, ctx, a, spec);
  }

  std::unique_ptr<stations::ExpertWeights> bind_experts(const StageContext&, std::string_view, const Tensor& view,
                                                        int64_t max_rows) override {
    auto x = std::make_unique<CpuExperts>();
    x->dtype = view.dtype;
    x->n_in = view.ne[0];
    x->n_out = view.ne[1];
    x->n_expert = view.ne[2];
    for (int64_t e = 0; e < x->n_expert; ++e)
      x->e.push_back(Linear::over(be_, view.dtype, x->n_in, x->n_out,
                                  static_cast<const char*>(view.host) + static_cast<size_t>(e * view.nb[2]),
                                  row_stride_of(view)));
    if (x->e[0].quantized()) reserve_quantised(max_rows, x->n_in);
    gather_.reserve(static_cast<size_t>(max_rows * x->n_in) * 4);
    return x;
  }

  std::unique_ptr<stations::ExpertRouting> bind_routing(const std::string&, int64_t n_expert, int64_t n_used,
                                                        int32_t max_tokens, bool renormalize, int64_t first,
                                                        int64_t count) override {
    auto r = std::make_unique<CpuRouting>();
    r->n_expert = n_expert;
    r->n_used = n_used;
    r->renormalize = renormalize;
    r->first = first;
    r->count = count;
    const size_t slots = static_cast<size_t>(max_tokens * n_used);
    r->start.resize(static_cast<size_t>(count + 1));
    r->next.resize(static_cast<size_t>(count));
    for (auto* v : {&r->token, &r->chosen, &r->slot_of}) v->resize(slots);
    r->weight.resize(slots);
    r->chosen_w.resize(slots);
    return r;
  }

  void route(const Step&, const Tensor& logits, int64_t m, stations::ExpertRouting& routing) override {
    CpuRouting& r = static_cast<CpuRouting&>(routing);
    const int64_t n_expert = r.n_expert, n_used = r.n_used, ls = stride_of(logits);
    r.m = m;
    std::fill(r.start.begin(), r.start.end(), 0);
    for (int64_t t = 0; t < m; ++t) {
      const float* l = rows_of(logits) + t * ls;
      int32_t* pick = r.chosen.data() + t * n_used;
      for (int64_t k = 0; k < n_used; ++k) {
        // The largest logit not yet chosen; scanning upwards with '>' keeps the lowest index of
        // equal ones. Softmax is monotonic, so this is the order of the probabilities.
        int32_t best = -1;
        for (int32_t e = 0; e < n_expert; ++e) {
          if (std::find(pick, pick + k, e) != pick + k) continue;
          if (best < 0 || l[e] > l[best]) best = e;
        }
        pick[k] = best;
      }
      // Renormalised over the chosen: exp(l_k - l_top) / sum, in double for the weights' sake;
      // or the softmax over every expert (the sum over all of them).
      double sum = 0;
      double* w = r.chosen_w.data() + t * n_used;
      for (int64_t k = 0; k < n_used; ++k) sum += w[k] = std::exp(static_cast<double>(l[pick[k]]) - l[pick[0]]);
      if (!r.renormalize) {
        sum = 0;
        for (int64_t e = 0; e < n_expert; ++e) sum += std::exp(static_cast<double>(l[e]) - l[pick[0]]);
      }
      for (int64_t k = 0; k < n_used; ++k) {
        w[k] /= sum;
        if (r.here(pick[k])) ++r.start[pick[k] - r.first + 1];
      }
    }
    r.used_experts = 0;
    for (int64_t e = 0; e < r.count; ++e) {
      r.used_experts += r.start[e + 1] > 0;
      r.start[e + 1] += r.start[e];
    }
    std::copy(r.start.begin(), r.start.end() - 1, r.next.begin());
    for (int64_t t = 0; t < m; ++t)
      for (int64_t k = 0; k < n_used; ++k) {
        const int32_t e = r.chosen[t * n_used + k];
        if (!r.here(e)) {
          r.slot_of[t * n_used + k] = -1;
          continue;
        }
        const int32_t slot = r.next[e - r.first]++;
        r.token[slot] = static_cast<int32_t>(t);
        r.weight[slot] = static_cast<float>(r.chosen_w[t * n_used + k]);
        r.slot_of[t * n_used + k] = slot;
      }
  }

  // Each expert some token chose runs one product per map over its tokens' rows, gathered so that
  // they are contiguous; slot rows are in the routing's grouped order.
  void expert_act(const Step&, const Tensor& x, const stations::ExpertWeights& gate, const stations::ExpertWeights& up,
                  const stations::ExpertRouting& routing, const Tensor& h, const Tensor& tmp,
                  const stations::ExpertWeights* next) override {
    prepared_rows_ = nullptr;
    const CpuRouting& r = static_cast<const CpuRouting&>(routing);
    const std::vector<Linear>& g_w = static_cast<const CpuExperts&>(gate).e;
    const std::vector<Linear>& u_w = static_cast<const CpuExperts&>(up).e;
    const int64_t slots = r.slots(), n_in = gate.n_in, n_ff = gate.n_out;
    float* rows = reinterpret_cast<float*>(gather_.data());
    const float* xp = rows_of(x);
    const int64_t xs = stride_of(x), grain = std::max<int64_t>(1, 16384 / n_in);
    be_.pool().run(slots, grain, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(rows + i * n_in, xp + r.token[i] * xs, static_cast<size_t>(n_in) * 4);
    });
    Workspace::Lease lease(quant_);
    QRows q{};
    const Tensor gathered = make_tensor(DType::F32, {n_in, slots}, rows);
    const Rows in = input_rows(gathered, slots, g_w[0].quantized() || u_w[0].quantized(), q);
    const bool prepare = next && static_cast<const CpuExperts*>(next)->e[0].quantized();
    QRows hq{};
    if (prepare) hq = prepared_q_ = prepared_plan(slots, n_ff);
    float* hp = rows_of(h);
    float* up_out = rows_of(tmp);
    const int64_t hs = stride_of(h), us = stride_of(tmp);
    for (int64_t e = 0; e < r.count; ++e) {
      const int64_t first = r.start[e], n = r.start[e + 1] - first;
      if (n == 0) continue;  // no token chose it: its weights stay unread
      QRows qe{};
      const Rows ein = slice(in, first, qe);
      float* he = hp + first * hs;
      float* ue = up_out + first * us;
      const MatOp ops[2] = {{&g_w[e], ein, he, hs, false}, {&u_w[e], ein, ue, us, false}};
      run_matmuls_then(be_, ops, 2, n, [&](int64_t j0, int64_t j1) {
        for (int64_t i = 0; i < n; ++i) {
          float* hr = he + i * hs + j0;
          kern_.silu_mul(hr, ue + i * us + j0, hr, j1 - j0);
          if (prepare) quantize_chunk(hq, first + i, hr, j0, j1);
        }
      });
    }
    if (prepare) prepared_rows_ = hp, prepared_m_ = slots;
  }

  void expert_linear(const Step&, const Tensor& h, const stations::ExpertWeights& w,
                     const stations::ExpertRouting& routing, const Tensor& d) override {
    const CpuRouting& r = static_cast<const CpuRouting&>(routing);
    const std::vector<Linear>& maps = static_cast<const CpuExperts&>(w).e;
    const int64_t slots = r.slots();
    Workspace::Lease lease(quant_);
    QRows q{};
    Rows in{rows_of(h), stride_of(h), nullptr};
    if (maps[0].quantized() && prepared_rows_ == h.host && prepared_m_ == slots) in.q = &prepared_q_;
    else in = input_rows(h, slots, maps[0].quantized(), q);
    prepared_rows_ = nullptr;
    for (int64_t e = 0; e < r.count; ++e) {
      const int64_t first = r.start[e], n = r.start[e + 1] - first;
      if (n == 0) continue;
      QRows qe{};
      const MatOp op{&maps[e], slice(in, first, qe), rows_of(d) + first * stride_of(d), stride_of(d), false};
      run_matmuls(be_, &op, 1, n);
    }
  }

  void expert_combine(const Step&, const Tensor& d, const stations::ExpertRouting& routing, const Tensor& y) override {
    const CpuRouting& r = static_cast<const CpuRouting&>(routing);
    const int64_t n = d.ne[0], ds = stride_of(d), ys = stride_of(y);
    const float* dp = rows_of(d);
    float* yp = rows_of(y);
    be_.pool().run(r.m, std::max<int64_t>(1, 16384 / n), [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t k = 0; k < r.n_used; ++k) {
          const int32_t slot = r.slot_of[t * r.n_used + k];
          if (slot < 0) continue;  // an expert computed on another rank
          kern_.axpy_f32(r.weight[slot], dp + slot * ds, yp + t * ys, n);
        }
    });
  }

  int64_t experts_used(const stations::ExpertRouting& r) const override {
    return static_cast<const CpuRouting&>(r).used_experts;
  }

 private:
  // Room to quantise max_rows rows of n values as a product's input, or to prepare them.
  void reserve_quantised(int64_t max_rows, int64_t n) {
    ScratchLayout layout;
    QRowsLayout q;
    q.plan(layout, max_rows, n);
    quant_.reserve(layout.total());
    prepared_.reserve(layout.total());
  }

  QRows prepared_plan(int64_t rows, int64_t n) {
    ScratchLayout layout;
    QRowsLayout plan;
    plan.plan(layout, rows, n);
    if (layout.total() > prepared_.size())
      throw Error("cpu kernels: a product of " + std::to_string(rows) + " rows exceeds the rows its weights were bound for");
    return plan.at(prepared_.data());
  }

  // Columns [j0, j1) of row `row` (values hr) quantised into q.
  void quantize_chunk(const QRows& q, int64_t row, const float* hr, int64_t j0, int64_t j1) const {
    kern_.quantize_q8(hr, j1 - j0, q.q + row * q.q_stride + j0, q.d + row * q.b_stride + j0 / 32,
                      q.s + row * q.b_stride + j0 / 32);
  }

  // Rows from `first` on of in, and of its quantisation (kept in q).
  static Rows slice(const Rows& in, int64_t first, QRows& q) {
    Rows r{in.x + first * in.stride, in.stride, nullptr};
    if (in.q) {
      q = *in.q;
      q.q += first * q.q_stride;
      q.d += first * q.b_stride;
      q.s += first * q.b_stride;
      r.q = &q;
    }
    return r;
  }

  // x's rows as the products read them: quantised into quant_ when a weight takes 8-bit input.
  Rows input_rows(const Tensor& x, int64_t m, bool quantized, QRows& q) {
    Rows in{rows_of(x), stride_of(x), nullptr};
    if (!quantized) return in;
    ScratchLayout layout;
    QRowsLayout plan;
    plan.plan(layout, m, x.ne[0]);
    if (layout.total() > quant_.size())
      throw Error("cpu kernels: a product of " + std::to_string(m) + " rows exceeds the rows its weights were bound for");
    q = plan.at(quant_.data());
    quantize_rows(be_, in.x, in.stride, m, x.ne[0], q);
    in.q = &q;
    return in;
  }

  CpuBackend& be_;
  const cpu::Kernels& kern_;
  Workspace quant_;  // quantised input rows of one product call, sized by bind_linear's max_rows
  // linear_act's output quantised for the next product: its rows, count and quantisation, valid
  // for the next linear call only.
  Workspace prepared_;
  Workspace gather_;  // expert_act: the slots' input rows, gathered by expert
  const void* prepared_rows_ = nullptr;
  int64_t prepared_m_ = 0;
  QRows prepared_q_{};
};

}  // namespace

std::unique_ptr<stations::Kernels> make_station_kernels(CpuBackend& be) { return std::make_unique<StationKernels>(be); }

}  // namespace semline::cpu
