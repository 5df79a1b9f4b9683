#include "stages/station_kernels.h"

#include <cmath>
#include <cstring>

#include <semline/error.h>

#include "stages/attention_cores.h"
#include "stages/linear.h"

namespace semline::cpu {
namespace {

using stations::BatchIndex;
using stations::NormKind;
using stations::Product;

struct CpuLinear final : stations::LinearWeight {
  Linear w;
};
struct CpuTable final : stations::RowTable {
  const char* data = nullptr;
  size_t row_stride = 0;
};
struct CpuRope final : stations::RopeStore {
  stations::AttentionShape a;
  std::vector<double> inv_freq;  // [rope_dim / 2]: rope_base^(-2i / rope_dim)
  mutable std::vector<float> cs;  // per worker: rope_dim floats (cos, sin pairs)
};
struct CpuNorm final : stations::NormWeights {
  std::vector<float> scale_values, shift_values;  // shift: empty for RMSNorm
};

const Linear& linear_of(const stations::LinearWeight& w) { return static_cast<const CpuLinear&>(w).w; }
float* rows_of(const Tensor& t) { return static_cast<float*>(t.host); }
int64_t stride_of(const Tensor& t) { return t.nb[1] / 4; }
size_t row_stride_of(const Tensor& view) { return static_cast<size_t>(view.ne[1] > 1 ? view.nb[1] : view.row_bytes()); }

// Rows per pool chunk for row-by-row work over rows of n values.
int64_t row_grain(int64_t n) { return n >= 4096 ? 4 : 16; }

class StationKernels final : public stations::Kernels {
 public:
  explicit StationKernels(CpuBackend& be) : be_(be), kern_(be.kernels()) {}
  const char* backend() const override { return "cpu"; }

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
    if (l->w.quantized()) {  // room to quantise max_rows input rows for it, or to prepare them
      ScratchLayout layout;
      QRowsLayout q;
      q.plan(layout, max_rows, l->n_in);
      quant_.reserve(layout.total());
      prepared_.reserve(layout.total());
    }
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
    QRows& hq = prepared_q_;
    if (prepare) {
      ScratchLayout layout;
      QRowsLayout plan;
      plan.plan(layout, m, u_w.n_out);
      if (layout.total() > prepared_.size())
        throw Error("cpu kernels: a product of " + std::to_string(m) + " rows exceeds the rows its weights were bound for");
      hq = plan.at(prepared_.data());
    }
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
        if (gate) kern_.silu_mul(hr, up_out + r * up_stride + j0, hr, j1 - j0);
        else gelu(hr, hr, j1 - j0);
        if (prepare)
          kern_.quantize_q8(hr, j1 - j0, hq.q + r * hq.q_stride + j0, hq.d + r * hq.b_stride + j0 / 32,
                            hq.s + r * hq.b_stride + j0 / 32);
      }
    });
    if (prepare) prepared_rows_ = hp, prepared_m_ = m;
  }

  void norm(const Step&, NormKind kind, const stations::NormWeights& w, float eps, const Tensor& x, const Tensor& y,
            int64_t m) override {
    const CpuNorm& nw = static_cast<const CpuNorm&>(w);
    const float* xp = rows_of(x);
    float* yp = rows_of(y);
    const int64_t xs = stride_of(x), ys = stride_of(y), n = nw.n;
    be_.pool().run(m, row_grain(n), [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        if (kind == NormKind::Layer)
          kern_.layer_norm(xp + r * xs, nw.scale_values.data(), nw.shift_values.data(), yp + r * ys, n, eps);
        else kern_.rms_norm(xp + r * xs, nw.scale_values.data(), yp + r * ys, n, eps);
      }
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

  std::unique_ptr<stations::RopeStore> bind_rope_store(const stations::AttentionShape& a) override {
    auto r = std::make_unique<CpuRope>();
    r->a = a;
    r->inv_freq.resize(static_cast<size_t>(a.rope_dim / 2));
    for (int64_t i = 0; i < a.rope_dim / 2; ++i)
      r->inv_freq[i] = std::pow(a.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(a.rope_dim));
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
        if (a.rope_dim > 0) {
          // Angles in double: pos * theta_i loses digits in float once positions reach the thousands.
          for (int64_t i = 0; i < a.rope_dim / 2; ++i) {
            const double angle = pos * r.inv_freq[i];
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
          if (kc.f16) kern_.to_f16(kt + g * hd, reinterpret_cast<uint16_t*>(kr), hd);
          else std::memcpy(kr, kt + g * hd, static_cast<size_t>(hd) * 4);
          if (vc.f16) kern_.to_f16(vt + g * hd, reinterpret_cast<uint16_t*>(vr), hd);
          else std::memcpy(vr, vt + g * hd, static_cast<size_t>(hd) * 4);
        }
      }
    });
  }

  // Every mask runs on the tiled core; dense is the reference.
  std::unique_ptr<stations::AttentionCore> bind_attention(const StageContext& ctx, const stations::AttentionShape& a,
                                                          const stations::CoreSpec& spec) override {
    if (spec.kind == stations::CoreKind::Dense) return std::make_unique<DenseCore>(be_, ctx, a, spec);
    return std::make_unique<TiledCore>(be_, ctx, a, spec);
  }

 private:
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
  const void* prepared_rows_ = nullptr;
  int64_t prepared_m_ = 0;
  QRows prepared_q_{};
};

}  // namespace

std::unique_ptr<stations::Kernels> make_station_kernels(CpuBackend& be) { return std::make_unique<StationKernels>(be); }

}  // namespace semline::cpu
