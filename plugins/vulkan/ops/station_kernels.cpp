#include "ops/station_kernels.h"

#include <semline/error.h>

#include "backend/step_data.h"
#include "backend/workspace.h"
#include "ops/attention_cores.h"
#include "ops/linear.h"

namespace semline::vk {
namespace {

struct VkLinear final : stations::LinearWeight {
  Linear w;
};
struct VkExperts final : stations::ExpertWeights {
  ExpertLinear w;
};
// The routing as moe_route.comp leaves it in its buffer, sized for the most tokens.
struct VkRouting final : stations::ExpertRouting {
  std::unique_ptr<VulkanBuffer> buf;
  Routing r;
};
struct VkTable final : stations::RowTable {
  DevWeight w;
  const Kernel* gather = nullptr;
};
struct VkRope final : stations::RopeStore {
  stations::AttentionShape a;
  bool qk_norm = false;
  float eps = 0;
  DevVector norms;  // with qk_norm: a q head's scales, then a k head's
  const Kernel* store[kKvTypes] = {};  // writing an F32, F16 or Q8_0 cache (KvView::type)
};
struct VkNorm final : stations::NormWeights {
  DevVector w;  // the scale, then for LayerNorm the shift right after it (the kernel reads both)
  const Kernel* kernel = nullptr;      // y = the normed rows
  const Kernel* kernel_add = nullptr;  // y += them (a post norm)
};

// The push constants of the shaders below.
struct NormPush {
  uint32_t x_off, x_stride, y_off, y_stride, w_off, n, rows;
  float eps;
};
struct SwigluPush {
  uint32_t g_off, u_off, n;
};
struct GeluPush {
  uint32_t off, n;
};
struct MapPush {
  uint32_t off, stride, n, rows;
  float v;
};
struct RoutePush {
  uint32_t logits_off, n_tokens, n_expert, n_used;
  uint32_t ids_off, w_off, cnt_off, ofs_off, list_off, all_experts;
};
struct CombinePush {
  uint32_t d_off, w_off, y_off, y_stride, n, n_tokens, n_used;
};
struct RopePush {
  uint32_t q_off, k_off, v_off, row, n_tokens;
  uint32_t n_head, n_kv, hd, rope_dim;
  uint32_t pos_off, start_off, tables_off, bt;
  uint32_t kc_off, vc_off, nb1, nb2;
  uint32_t nb3, nw_off;
  float eps;
};

const Linear& linear_of(const stations::LinearWeight& w) { return static_cast<const VkLinear&>(w).w; }
const ExpertLinear& experts_of(const stations::ExpertWeights& w) { return static_cast<const VkExperts&>(w).w; }
// The routing of the step's m tokens.
Routing routing_of(const stations::ExpertRouting& r, int64_t m) {
  Routing routing = static_cast<const VkRouting&>(r).r;
  routing.tokens = m;
  return routing;
}


class StationKernels final : public stations::Kernels {
 public:
  explicit StationKernels(VulkanBackend& be) : be_(be) {}

  void reserve_scratch(size_t bytes) override { be_.workspace().reserve(bytes); }
  void reserve_tokens(int32_t max_tokens) override { be_.step_data().reserve(max_tokens); }
  Tensor scratch_rows(size_t offset, int64_t width, int64_t rows) override {
    return make_tensor(DType::F32, {width, rows}, nullptr, &be_.workspace().memory(), offset);
  }

  void check_memory(const Tensor& t, const char* what, const std::string& label) const override {
    const VulkanBuffer& b = be_.buffer_of(t, what, label);
    const uint64_t end = t.offset + static_cast<uint64_t>(t.ne[1] > 0 ? (t.ne[1] - 1) * t.nb[1] + t.ne[0] * 4 : 0);
    if (end > b.size())
      throw Error(label + ": " + what + " " + tensor_shape_string(t) + " reaches past the end of its buffer (" +
                  std::to_string(b.size()) + " bytes)");
  }

  void begin(const Step& step, const std::string& label) override {
    if (&step.stream != &be_.stream())
      throw Error(label + ": the step's stream is another backend's; this station's work runs on vulkan");
  }

  std::unique_ptr<stations::LinearWeight> bind_linear(const StageContext& ctx, std::string_view role,
                                                      const Tensor& view, std::vector<float> bias,
                                                      int64_t) override {  // products need no scratch here
    auto l = std::make_unique<VkLinear>();
    l->dtype = view.dtype;
    l->n_in = view.ne[0];
    l->n_out = view.ne[1];
    l->bias = !bias.empty();
    const DevVector b = bias.empty() ? DevVector{} : upload_floats(be_, bias, station_label(ctx));
    l->w = Linear(be_, device_weight(ctx, role, view), b);
    return l;
  }

  std::unique_ptr<stations::RowTable> bind_table(const StageContext& ctx, std::string_view role,
                                                 const Tensor& view) override {
    auto t = std::make_unique<VkTable>();
    t->dtype = view.dtype;
    t->width = view.ne[0];
    t->rows = view.ne[1];
    t->w = device_weight(ctx, role, view);
    t->gather = &be_.kernels().get(ShaderId::GetRows, {64, static_cast<uint32_t>(t->dtype)});
    return t;
  }

  std::unique_ptr<stations::NormWeights> bind_norm(const std::string& label, std::vector<float> scale,
                                                   std::vector<float> shift) override {
    auto w = std::make_unique<VkNorm>();
    w->n = static_cast<int64_t>(scale.size());
    w->shift = !shift.empty();
    scale.insert(scale.end(), shift.begin(), shift.end());
    w->w = upload_floats(be_, scale, label);
    const ShaderId id = w->shift ? ShaderId::LayerNorm : ShaderId::RmsNorm;
    w->kernel = &be_.kernels().get(id, {128, 0});
    w->kernel_add = &be_.kernels().get(id, {128, 1});
    return w;
  }

  void linear(const Step& step, const Tensor& x, std::span<const stations::Product> products, int64_t m) override {
    if (m == 0) return;
    VulkanStream& s = be_.stream_of(step.stream);
    const DevRows in = dev_rows(x);
    if (products.size() > 1) s.begin_concurrent();
    for (const stations::Product& p : products) linear_of(*p.w).run(be_, in, dev_rows(p.y), m, p.accumulate);
    if (products.size() > 1) s.end_concurrent();
  }

  void linear_act(const Step& step, const Tensor& x, const stations::LinearWeight* gate,
                  const stations::LinearWeight& up, Activation act, const Tensor& h, const Tensor& tmp,
                  int64_t m, const stations::LinearWeight*) override {  // the products read h as it is
    if (m == 0) return;
    const int64_t n_ff = up.n_out;
    const DevRows xin = dev_rows(x), hr = dev_rows(h);
    // The activation kernels walk m * n_ff values from their offsets: rows must be packed.
    if (hr.stride != n_ff || (gate && (tmp.buffer != h.buffer || tmp.nb[1] != n_ff * 4)))
      throw Error("vulkan kernels: linear_act needs packed rows of one buffer for h and tmp");
    const uint32_t n = static_cast<uint32_t>(m * n_ff);
    if (gate) {
      const DevRows ur = dev_rows(tmp);
      VulkanStream& s = be_.stream_of(step.stream);
      s.begin_concurrent();
      linear_of(*gate).run(be_, xin, hr, m, false);
      linear_of(up).run(be_, xin, ur, m, false);
      s.end_concurrent();
      if (act != Activation::Silu) {  // GeGLU: gelu(gate x) in place, then times up x
        GeluPush g{hr.off, n};
        const uint32_t tanh = act == Activation::GeluTanh ? 1u : 0u;
        be_.dispatch(cached(gelu_[tanh], ShaderId::Gelu, {256, tanh}), {hr.buf}, &g, sizeof g, (n + 255) / 256);
      }
      SwigluPush p{hr.off, ur.off, n};
      const uint32_t gated = act == Activation::Silu ? 0u : 1u;
      be_.dispatch(cached(swiglu_[gated], ShaderId::Swiglu, {256, gated}), {hr.buf}, &p, sizeof p, (n + 255) / 256);
    } else {
      linear_of(up).run(be_, xin, hr, m, false);
      GeluPush p{hr.off, n};
      const uint32_t tanh = act == Activation::GeluTanh ? 1u : 0u;
      be_.dispatch(cached(gelu_[tanh], ShaderId::Gelu, {256, tanh}), {hr.buf}, &p, sizeof p, (n + 255) / 256);
    }
  }

  // The kernel was chosen at bind: LayerNorm when the weights have a shift.
  void norm(const Step&, stations::NormKind, const stations::NormWeights& w, float eps, const Tensor& x,
            const Tensor& y, int64_t m, bool accumulate) override {
    const VkNorm& nw = static_cast<const VkNorm&>(w);
    const DevRows xr = dev_rows(x), yr = dev_rows(y);
    NormPush p{xr.off, xr.stride, yr.off, yr.stride, nw.w.off, u32(nw.n), u32(m), eps};
    be_.dispatch(accumulate ? *nw.kernel_add : *nw.kernel, {xr.buf, nw.w.buf, yr.buf}, &p, sizeof p,
                 static_cast<uint64_t>(m));
  }

  void scale(const Step&, const Tensor& x, int64_t m, float s) override { map(x, m, s, 0); }
  void softcap(const Step&, const Tensor& x, int64_t m, float cap) override { map(x, m, cap, 1); }

  void gather_table(const Step& step, const stations::RowTable& table, stations::BatchIndex index,
                    const Tensor& out, bool accumulate) override {
    const VkTable& t = static_cast<const VkTable&>(table);
    const Batch& b = step.batch;
    const StepView& v = be_.step_data().upload(b);
    const DevRows o = dev_rows(out);
    GetRowsPush p{t.w.offset, t.w.row_bytes, u32(t.width), index == stations::BatchIndex::Tokens ? v.tokens : v.positions,
                  o.off, o.stride, u32(b.n_tokens), accumulate ? 1u : 0u};
    be_.dispatch(*t.gather, {t.w.buf, &be_.step_data().ints(), o.buf}, &p, sizeof p, u32(b.n_tokens));
  }

  void gather_outputs(const Step& step, const Tensor& x, const Tensor& out) override {
    const Batch& b = step.batch;
    const StepView& v = be_.step_data().upload(b);
    const DevRows xr = dev_rows(x), o = dev_rows(out);
    GetRowsPush p{xr.off * 4, xr.stride * 4, u32(x.ne[0]), v.out_rows, o.off, o.stride, u32(b.n_outputs), 0};
    be_.dispatch(cached(gather_f32_, ShaderId::GetRows, {64, static_cast<uint32_t>(DType::F32)}),
                 {xr.buf, &be_.step_data().ints(), o.buf}, &p, sizeof p, static_cast<uint64_t>(b.n_outputs));
  }

  void check_kv(const KvLayer& kv, const std::string& label) const override {
    const Tensor* ts[2] = {&kv.k, &kv.v};
    for (int i = 0; i < 2; ++i) {
      const Tensor& t = *ts[i];
      const char* name = i ? "KV cache v" : "KV cache k";
      if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::Q8_0)
        throw Error(label + ": " + name + " " + tensor_shape_string(t) + ": the vulkan attention reads an F32, F16 "
                    "or Q8_0 cache");
      // A Q8_0 row is written whole by one invocation, in 32-bit words: it must fill whole words
      // (68 bytes per 64 values), so that no two rows share one.
      if (t.dtype == DType::Q8_0 && t.ne[0] % 64 != 0)
        throw Error(label + ": " + name + " " + tensor_shape_string(t) + ": the vulkan attention writes a q8_0 cache "
                    "in whole 32-bit words, which takes a head size that is a multiple of 64; this model's is " +
                    std::to_string(t.ne[0]) + " (use kv_cache.dtype = \"f16\")");
      const VulkanBuffer& b = be_.buffer_of(t, name, label);
      // F16 values are written in pairs, one 32-bit word each.
      if (t.nb[1] % 4 != 0 || t.nb[2] % 4 != 0 || t.nb[3] % 4 != 0 || t.offset % 4 != 0)
        throw Error(label + ": " + name + " " + tensor_shape_string(t) + " needs strides and offset in whole 32-bit words");
      const double end = static_cast<double>(t.offset) + static_cast<double>(t.span_bytes());
      if (end > static_cast<double>(b.size()))
        throw Error(label + ": " + name + " " + tensor_shape_string(t) + " reaches past its buffer");
    }
    if (kv.k.dtype != kv.v.dtype || kv.k.nb[1] != kv.v.nb[1] || kv.k.nb[2] != kv.v.nb[2] || kv.k.nb[3] != kv.v.nb[3])
      throw Error(label + ": KV cache k " + tensor_shape_string(kv.k) + " and v " + tensor_shape_string(kv.v) +
                  " differ in dtype or layout");
  }

  std::unique_ptr<stations::RopeStore> bind_rope_store(const stations::AttentionShape& a,
                                                       const stations::HeadNorms& norms) override {
    if (a.head_dim % 2 != 0 || a.head_dim > kMaxHeadDim)
      throw Error("vulkan kernels: head_dim " + std::to_string(a.head_dim) + " must be even and at most " +
                  std::to_string(kMaxHeadDim) + " for the attention kernels");
    auto r = std::make_unique<VkRope>();
    r->a = a;
    be_.step_data().reserve_rope(a.inv_freq);
    r->qk_norm = norms.on();
    if (r->qk_norm) {
      std::vector<float> scales = norms.q;
      scales.insert(scales.end(), norms.k.begin(), norms.k.end());
      r->norms = upload_floats(be_, scales, "q/k head norms");
      r->eps = norms.eps;
    }
    const uint32_t neox = a.rope_type == RopeType::NeoX ? 1u : 0u, qk = r->qk_norm ? 1u : 0u;
    for (uint32_t t = 0; t < kKvTypes; ++t) r->store[t] = &be_.kernels().get(ShaderId::RopeStore, {64, t, neox, qk});
    return r;
  }

  void rope_store(const Step& step, const stations::RopeStore& rope, const Tensor& qkv, int64_t m) override {
    const VkRope& r = static_cast<const VkRope&>(rope);
    const stations::AttentionShape& a = r.a;
    StepData& sd = be_.step_data();
    const StepView& view = sd.upload(step.batch);
    const GpuBuffer& table = sd.rope(step.batch, a.inv_freq);
    const KvView kv = kv_view(be_, *step.kv);
    const DevRows rows = dev_rows(qkv);
    const uint32_t k_off = rows.off + u32(a.q_width()), v_off = k_off + u32(a.kv_width());
    const RopePush p{rows.off,       k_off,          v_off,       rows.stride, u32(m),
                     u32(a.n_head),  u32(a.n_kv),    u32(a.head_dim), u32(a.rope_dim),
                     view.positions, view.seq_start, view.tables, u32(step.kv->block_tokens),
                     kv.k_off,       kv.v_off,       kv.nb1,      kv.nb2,
                     kv.nb3,         r.norms.off,    r.eps};
    // Without the norms binding 5 is never read; the rope table stands in for it.
    const GpuBuffer* norms = r.qk_norm ? r.norms.buf : &table;
    be_.dispatch(*r.store[kv.type], {rows.buf, &table, &sd.ints(), kv.k, kv.v, norms}, &p, sizeof p,
                 static_cast<uint64_t>(m));
  }

  // The kernels attend causally, or over a sliding window (they start at its first key); another
  // mask (block-sparse) has no core here.
  std::unique_ptr<stations::AttentionCore> bind_attention(const StageContext& ctx, const stations::AttentionShape& a,
                                                          const stations::CoreSpec& spec) override {
    if (!spec.mask->causal() && spec.mask->window() == 0)
      throw Error(station_label(ctx) + ": attention/" + spec.variant +
                  " has no vulkan kernel (its mask runs on the cpu backend only)");
    if (spec.kind == stations::CoreKind::Dense) return std::make_unique<DenseCore>(be_, ctx, a, spec);
    return std::make_unique<FlashCore>(be_, ctx, a, spec);
  }

  std::unique_ptr<stations::ExpertWeights> bind_experts(const StageContext& ctx, std::string_view role,
                                                        const Tensor& view, int64_t) override {
    auto x = std::make_unique<VkExperts>();
    x->dtype = view.dtype;
    x->n_in = view.ne[0];
    x->n_out = view.ne[1];
    x->n_expert = view.ne[2];
    x->w = ExpertLinear(be_, device_weight(ctx, role, view));
    return x;
  }

  // Per slot its expert id and weight, per expert its slot count and the start of its run, and the
  // runs of slots grouped by expert: one buffer, as moe_route.comp writes it.
  std::unique_ptr<stations::ExpertRouting> bind_routing(const std::string& label, int64_t n_expert, int64_t n_used,
                                                        int32_t max_tokens, bool renormalize, int64_t first,
                                                        int64_t count) override {
    if (first != 0 || count != n_expert)
      throw Error(label + ": the vulkan backend computes every expert of a mixture; expert parallelism ([parallel] "
                          "expert_parallel) runs on the cpu backend");
    auto x = std::make_unique<VkRouting>();
    x->n_expert = n_expert;
    x->n_used = n_used;
    x->renormalize = renormalize;
    x->count = n_expert;
    const size_t slots = static_cast<size_t>(max_tokens * n_used);
    x->r.ids = 0;
    x->r.weights = u32(static_cast<int64_t>(slots));
    x->r.counts = u32(static_cast<int64_t>(2 * slots));
    x->r.offsets = x->r.counts + u32(n_expert);
    x->r.lists = x->r.offsets + u32(n_expert);
    x->r.used = n_used;
    const size_t words = 3 * slots + 2 * static_cast<size_t>(n_expert);
    be_.check_binding_size(words * 4, label + ": the routing of max_batch_tokens tokens");
    x->buf = std::make_unique<VulkanBuffer>(be_, words * 4);
    x->r.buf = &x->buf->gpu();
    return x;
  }

  // One workgroup picks each token's experts and groups the slots: nothing goes back to the host,
  // so a decode step records the same commands every token and its command buffer is replayed.
  void route(const Step&, const Tensor& logits, int64_t m, stations::ExpertRouting& routing) override {
    const Routing r = routing_of(routing, m);
    const DevRows l = dev_rows(logits);
    const RoutePush p{l.off,     u32(m),   u32(routing.n_expert), u32(routing.n_used),
                      r.ids,     r.weights, r.counts,             r.offsets,
                      r.lists,   routing.renormalize ? 0u : 1u};
    be_.dispatch(cached(route_, ShaderId::MoeRoute, {64}), {l.buf, r.buf}, &p, sizeof p, 1);
  }

  // Gate and up as expert-indexed products from each slot's token row into the slot's row, side
  // by side, then the SwiGLU kernel over all slots.
  void expert_act(const Step& step, const Tensor& x, const stations::ExpertWeights& gate,
                  const stations::ExpertWeights& up, const stations::ExpertRouting& routing, const Tensor& h,
                  const Tensor& tmp, const stations::ExpertWeights*) override {
    const int64_t m = x.ne[1];
    const Routing r = routing_of(routing, m);
    const DevRows hr = dev_rows(h), ur = dev_rows(tmp), xin = dev_rows(x);
    const int64_t n_ff = gate.n_out;
    if (hr.stride != n_ff || ur.stride != n_ff || tmp.buffer != h.buffer)
      throw Error("vulkan kernels: expert_act needs packed rows of one buffer for h and tmp");
    VulkanStream& s = be_.stream_of(step.stream);
    s.begin_concurrent();
    experts_of(gate).run(be_, xin, hr, r, true);
    experts_of(up).run(be_, xin, ur, r, true);
    s.end_concurrent();
    const uint64_t n = static_cast<uint64_t>(m * routing.n_used * n_ff);
    const SwigluPush p{hr.off, ur.off, static_cast<uint32_t>(n)};
    be_.dispatch(cached(swiglu_[0], ShaderId::Swiglu, {256, 0}), {hr.buf}, &p, sizeof p, (n + 255) / 256);
  }

  void expert_linear(const Step&, const Tensor& h, const stations::ExpertWeights& w,
                     const stations::ExpertRouting& routing, const Tensor& d) override {
    experts_of(w).run(be_, dev_rows(h), dev_rows(d), routing_of(routing, h.ne[1] / routing.n_used), false);
  }

  // Adds each token's weighted slots into y in rank order.
  void expert_combine(const Step&, const Tensor& d, const stations::ExpertRouting& routing, const Tensor& y) override {
    const int64_t m = y.ne[1];
    const Routing r = routing_of(routing, m);
    const DevRows dr = dev_rows(d), yr = dev_rows(y);
    const CombinePush p{dr.off, r.weights, yr.off, yr.stride, u32(d.ne[0]), u32(m), u32(routing.n_used)};
    be_.dispatch(cached(combine_, ShaderId::MoeCombine, {256}), {dr.buf, r.buf, yr.buf}, &p, sizeof p,
                 (static_cast<uint64_t>(m * d.ne[0]) + 255) / 256);
  }

  int64_t experts_used(const stations::ExpertRouting&) const override { return -1; }  // on the device

 private:
  // The kernel in `slot`, built on first use.
  const Kernel& cached(const Kernel*& slot, ShaderId id, std::initializer_list<uint32_t> spec) {
    if (!slot) slot = &be_.kernels().get(id, spec);
    return *slot;
  }

  // x = x * v (softcap 0) or v * tanh(x / v) (softcap 1) over m rows of x.ne[0] values.
  void map(const Tensor& x, int64_t m, float v, uint32_t softcap) {
    if (m == 0) return;
    const DevRows r = dev_rows(x);
    MapPush p{r.off, r.stride, u32(x.ne[0]), u32(m), v};
    const uint64_t n = static_cast<uint64_t>(x.ne[0]) * static_cast<uint64_t>(m);
    be_.dispatch(cached(map_[softcap], ShaderId::Map, {256, softcap}), {r.buf}, &p, sizeof p, (n + 255) / 256);
  }

  VulkanBackend& be_;
  const Kernel* swiglu_[2] = {nullptr, nullptr};  // SwiGLU, GeGLU's product
  const Kernel* gelu_[2] = {nullptr, nullptr};  // exact, tanh
  const Kernel* map_[2] = {nullptr, nullptr};   // scale, softcap
  const Kernel* gather_f32_ = nullptr;
  const Kernel* route_ = nullptr;
  const Kernel* combine_ = nullptr;
};

}  // namespace

std::unique_ptr<stations::Kernels> make_station_kernels(VulkanBackend& be) { return std::make_unique<StationKernels>(be); }

}  // namespace semline::vk
