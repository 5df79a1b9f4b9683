#include "stages/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <semline/error.h>

#include "stages/stages.h"

namespace semline::cpu {

Attention::Attention(const StageContext& ctx)
    : be_(cpu_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
  const stations::AttentionShape a = stations::attention_shape(ctx);
  n_embd_ = a.n_embd;
  n_head_ = a.n_head;
  n_kv_ = a.n_kv;
  hd_ = a.head_dim;
  rope_type_ = a.rope_type;
  rope_dim_ = a.rope_dim;
  if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
  group_ = n_head_ / n_kv_;
  scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd_)));
  inv_freq_.resize(static_cast<size_t>(rope_dim_ / 2));
  for (int64_t i = 0; i < rope_dim_ / 2; ++i)
    inv_freq_[i] = std::pow(a.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(rope_dim_));

  const int64_t qd = n_head_ * hd_, kd = n_kv_ * hd_;
  qkv_width_ = qd + 2 * kd;
  fused_ = is_bound(ctx, "qkv");
  if (fused_) {
    wqkv_ = Linear::bind(ctx, "qkv", n_embd_, qkv_width_, "(n_embd, (n_head + 2 n_head_kv) * head_dim)");
    wqkv_.bind_bias(ctx, "qkv_bias");
  } else {
    wq_ = Linear::bind(ctx, "q", n_embd_, qd, "(n_embd, n_head * head_dim)");
    wk_ = Linear::bind(ctx, "k", n_embd_, kd, "(n_embd, n_head_kv * head_dim)");
    wv_ = Linear::bind(ctx, "v", n_embd_, kd, "(n_embd, n_head_kv * head_dim)");
    wq_.bind_bias(ctx, "q_bias");
    wk_.bind_bias(ctx, "k_bias");
    wv_.bind_bias(ctx, "v_bias");
  }
  wo_ = Linear::bind(ctx, "o", qd, n_embd_, "(n_head * head_dim, n_embd)");
  wo_.bind_bias(ctx, "o_bias");

  const int64_t m = max_tokens_;
  qkv_ = layout_.add(static_cast<size_t>(m * qkv_width_) * 4);
  attn_ = layout_.add(static_cast<size_t>(m * qd) * 4);
  cs_ = layout_.add(static_cast<size_t>(be_.host_threads() * rope_dim_) * 4);
  if (input_quantized()) xq_.plan(layout_, m, n_embd_);
  if (wo_.quantized()) aq_.plan(layout_, m, qd);
}

bool Attention::input_quantized() const {
  return fused_ ? wqkv_.quantized() : wq_.quantized() || wk_.quantized() || wv_.quantized();
}

void Attention::check_kv(const Step& step, KvPool& k, KvPool& v) const {
  if (!step.kv) throw Error(label_ + ": the step carries no KV cache for this layer");
  const KvLayer& kv = *step.kv;
  const Tensor* ts[2] = {&kv.k, &kv.v};
  KvPool* ps[2] = {&k, &v};
  for (int i = 0; i < 2; ++i) {
    const Tensor& t = *ts[i];
    const char* name = i ? "v" : "k";
    const bool shape_ok = t.ne[0] == hd_ && t.ne[1] == n_kv_ && t.ne[2] == kv.block_tokens && t.ne[3] >= 1 &&
                          kv.block_tokens > 0;
    if ((t.dtype != DType::F32 && t.dtype != DType::F16) || !t.host || !shape_ok)
      throw Error(label_ + ": KV cache " + name + " must be F32 or F16 [" + std::to_string(hd_) + ", " +
                  std::to_string(n_kv_) + ", " + std::to_string(kv.block_tokens) + " (block_tokens), n_blocks] in host memory, got " +
                  tensor_shape_string(t));
    const int64_t elt = dtype_block_bytes(t.dtype);
    if (t.nb[0] != elt || t.nb[1] < hd_ * elt || t.nb[2] < n_kv_ * t.nb[1] || t.nb[3] < kv.block_tokens * t.nb[2])
      throw Error(label_ + ": KV cache " + name + " " + tensor_shape_string(t) + " has overlapping strides");
    ps[i]->base = static_cast<const char*>(t.host);
    ps[i]->head = static_cast<size_t>(t.nb[1]);
    ps[i]->slot = static_cast<size_t>(t.nb[2]);
    ps[i]->block = static_cast<size_t>(t.nb[3]);
    ps[i]->f16 = t.dtype == DType::F16;
  }
  if (kv.k.ne[3] != kv.v.ne[3])
    throw Error(label_ + ": KV cache k has " + std::to_string(kv.k.ne[3]) + " blocks but v has " +
                std::to_string(kv.v.ne[3]));
}

int64_t Attention::check_positions(const Batch& b, const KvLayer& kv) const {
  const int32_t bt = kv.block_tokens;
  const int64_t n_blocks = kv.k.ne[3];
  int64_t longest = 0;
  // Block table entries [lo, hi] of run_seq are known good; consecutive tokens of a sequence
  // mostly read overlapping ranges, so each entry is checked about once.
  int32_t run_seq = -1, lo = 0, hi = -1;
  for (int32_t t = 0; t < b.n_tokens; ++t) {
    const int32_t s = b.seq[t], pos = b.positions[t];
    const std::string tok = label_ + ": batch token " + std::to_string(t);
    if (s < 0 || s >= b.n_seqs)
      throw Error(tok + " names sequence " + std::to_string(s) + " but the batch has " + std::to_string(b.n_seqs));
    if (pos < 0) throw Error(tok + " has a negative position " + std::to_string(pos));
    const SeqView& sv = b.seqs[s];
    const int32_t need = pos / bt;
    if (need >= sv.n_blocks || !sv.blocks)
      throw Error(tok + " at position " + std::to_string(pos) + " needs entry " + std::to_string(need) +
                  " of the block table of sequence " + std::to_string(s) + ", which has " +
                  std::to_string(sv.n_blocks) + " entries");
    const int32_t first = first_key(pos) / bt;
    if (s != run_seq) run_seq = s, lo = 0, hi = -1;
    for (int32_t i = first; i <= need; ++i) {
      if (i >= lo && i <= hi) continue;
      if (sv.blocks[i] == -1)
        throw Error(tok + " at position " + std::to_string(pos) + " reads keys from position " +
                    std::to_string(first_key(pos)) + ", but block table entry " + std::to_string(i) +
                    " of sequence " + std::to_string(s) + " was released (behind every layer's window)");
      if (sv.blocks[i] < 0 || sv.blocks[i] >= n_blocks)
        throw Error(label_ + ": block table entry " + std::to_string(i) + " of sequence " + std::to_string(s) +
                    " is cache block " + std::to_string(sv.blocks[i]) + ", but the cache has " +
                    std::to_string(n_blocks) + " blocks");
    }
    if (hi < lo || first > hi + 1 || need + 1 < lo) lo = first, hi = need;  // disjoint: start over
    else lo = std::min(lo, first), hi = std::max(hi, need);
    if (pos + 1 > longest) longest = pos + 1;
  }
  return longest;
}

void Attention::rope_and_store(const Batch& b, float* qkv, const KvPool& kc, const KvPool& vc, int32_t bt,
                               char* ws) {
  const Kernels& kern = be_.kernels();
  const int64_t qd = n_head_ * hd_, kd = n_kv_ * hd_;
  const int64_t grain = 8;
  be_.pool().run(b.n_tokens, grain, [&](int64_t t0, int64_t t1, int w) {
    float* cs = reinterpret_cast<float*>(ws + cs_) + w * rope_dim_;
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t pos = b.positions[t];
      float* qt = qkv + t * qkv_width_;
      float* kt = qt + qd;
      const float* vt = kt + kd;
      if (rope_dim_ > 0) {
        // Angles in double: pos * theta_i loses digits in float once positions reach the thousands.
        for (int64_t i = 0; i < rope_dim_ / 2; ++i) {
          const double a = pos * inv_freq_[i];
          cs[2 * i] = static_cast<float>(std::cos(a));
          cs[2 * i + 1] = static_cast<float>(std::sin(a));
        }
        kern.rope(qt, n_head_, hd_, rope_dim_, cs, rope_type_);
        kern.rope(kt, n_kv_, hd_, rope_dim_, cs, rope_type_);
      }
      const SeqView& sv = b.seqs[b.seq[t]];
      for (int64_t g = 0; g < n_kv_; ++g) {
        char* kr = const_cast<char*>(cache_row(kc, sv, pos, bt, g));
        char* vr = const_cast<char*>(cache_row(vc, sv, pos, bt, g));
        if (kc.f16) kern.to_f16(kt + g * hd_, reinterpret_cast<uint16_t*>(kr), hd_);
        else std::memcpy(kr, kt + g * hd_, static_cast<size_t>(hd_) * 4);
        if (vc.f16) kern.to_f16(vt + g * hd_, reinterpret_cast<uint16_t*>(vr), hd_);
        else std::memcpy(vr, vt + g * hd_, static_cast<size_t>(hd_) * 4);
      }
    }
  });
}

void Attention::forward(const Tensor& in, const Tensor& out, const Step& step) {
  const Batch& b = step.batch;
  const int64_t m = b.n_tokens;
  if (m > max_tokens_)
    throw Error(label_ + ": batch of " + std::to_string(m) + " tokens exceeds max_batch_tokens " +
                std::to_string(max_tokens_));
  const Act x = activation(in, n_embd_, m, "input", label_);
  const Act y = activation(out, n_embd_, m, "output", label_);
  if (m == 0) return;
  KvPool kc, vc;
  check_kv(step, kc, vc);
  kv_elt_ = kc.f16 ? 2 : 4;
  prepare(check_positions(b, *step.kv));

  Workspace::Lease lease(be_.workspace());
  char* ws = be_.workspace().data();
  const int64_t qd = n_head_ * hd_, kd = n_kv_ * hd_;
  float* qkv = reinterpret_cast<float*>(ws + qkv_);
  float* attn = reinterpret_cast<float*>(ws + attn_);

  QRows xq{};
  Rows xin{x.p, x.stride, nullptr};
  if (input_quantized()) {
    xq = xq_.at(ws);
    quantize_rows(be_, x.p, x.stride, m, n_embd_, xq);
    xin.q = &xq;
  }
  // Separate maps write their columns of the same q | k | v rows the fused map writes whole.
  if (fused_) {
    const MatOp op{&wqkv_, xin, qkv, qkv_width_, false};
    run_matmuls(be_, &op, 1, m);
  } else {
    const MatOp ops[3] = {{&wq_, xin, qkv, qkv_width_, false},
                          {&wk_, xin, qkv + qd, qkv_width_, false},
                          {&wv_, xin, qkv + qd + kd, qkv_width_, false}};
    run_matmuls(be_, ops, 3, m);
  }
  rope_and_store(b, qkv, kc, vc, step.kv->block_tokens, ws);
  core(Work{b, qkv, qkv_width_, attn, kc, vc, step.kv->block_tokens, ws});

  QRows aq{};
  Rows ain{attn, qd, nullptr};
  if (wo_.quantized()) {
    aq = aq_.at(ws);
    quantize_rows(be_, attn, qd, m, qd, aq);
    ain.q = &aq;
  }
  const MatOp o{&wo_, ain, y.p, y.stride, true};
  run_matmuls(be_, &o, 1, m);
}

StageCost Attention::cost(const Batch& b) const {
  const double m = b.n_tokens, qd = static_cast<double>(n_head_ * hd_), kd = static_cast<double>(n_kv_ * hd_);
  double keys = 0;  // key positions attended to, summed over tokens
  for (int32_t t = 0; t < b.n_tokens; ++t) keys += keys_read(b.positions[t]);
  const double flops = 2.0 * m * n_embd_ * (2.0 * qd + 2.0 * kd) + 4.0 * keys * qd;
  const double bytes = wqkv_.bytes() + wq_.bytes() + wk_.bytes() + wv_.bytes() + wo_.bytes() + 2.0 * keys * kd * kv_elt_ +
                       m * (8.0 * n_embd_ + 2.0 * kd * kv_elt_);
  return {flops, bytes};
}

std::vector<std::string> attention_basics_supported(const StageContext& ctx) {
  return stations::attention_supported(ctx, "cpu");
}

std::vector<std::string> attention_supports(const StageContext& ctx) {
  std::vector<std::string> why = attention_basics_supported(ctx);
  if (ctx.hp && ctx.hp->sliding_window > 0)
    why.push_back("the model attends over a sliding window of " + std::to_string(ctx.hp->sliding_window) +
                  " positions; this variant attends to the whole context");
  return why;
}

}  // namespace semline::cpu
