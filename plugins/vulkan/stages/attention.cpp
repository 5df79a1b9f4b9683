#include "stages/attention.h"

#include <cmath>

#include <semline/error.h>

#include "stages/stages.h"

namespace semline::vk {
namespace {

struct RopePush {
  uint32_t q_off, k_off, v_off, row, n_tokens;
  uint32_t n_head, n_kv, hd, rope_dim;
  uint32_t pos_off, start_off, tables_off, bt;
  uint32_t kc_off, vc_off, nb1, nb2;
  uint32_t nb3;
};

}  // namespace

Attention::Attention(const StageContext& ctx)
    : be_(vulkan_backend_of(ctx)), label_(station_label(ctx)), max_tokens_(ctx.max_batch_tokens) {
  const stations::AttentionShape a = stations::attention_shape(ctx);
  n_embd_ = a.n_embd;
  n_head_ = a.n_head;
  n_kv_ = a.n_kv;
  hd_ = a.head_dim;
  rope_type_ = a.rope_type;
  rope_dim_ = a.rope_dim;
  rope_base_ = a.rope_base;
  if (hd_ % 2 != 0 || hd_ > kMaxHeadDim)
    throw Error(label_ + ": head_dim " + std::to_string(hd_) + " must be even and at most " +
                std::to_string(kMaxHeadDim) + " for the vulkan attention kernels");
  if (max_tokens_ <= 0) throw Error(label_ + ": max_batch_tokens must be positive");
  group_ = n_head_ / n_kv_;
  scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd_)));

  const int64_t qd = n_head_ * hd_, kd = n_kv_ * hd_;
  qkv_width_ = qd + 2 * kd;
  fused_ = is_bound(ctx, "qkv");
  if (fused_) {
    wqkv_ = Linear(be_, bind_weight(ctx, "qkv", n_embd_, qkv_width_, "(n_embd, (n_head + 2 n_head_kv) * head_dim)"),
                   bind_bias(ctx, "qkv_bias", qkv_width_));
  } else {
    wq_ = Linear(be_, bind_weight(ctx, "q", n_embd_, qd, "(n_embd, n_head * head_dim)"), bind_bias(ctx, "q_bias", qd));
    wk_ = Linear(be_, bind_weight(ctx, "k", n_embd_, kd, "(n_embd, n_head_kv * head_dim)"), bind_bias(ctx, "k_bias", kd));
    wv_ = Linear(be_, bind_weight(ctx, "v", n_embd_, kd, "(n_embd, n_head_kv * head_dim)"), bind_bias(ctx, "v_bias", kd));
  }
  wo_ = Linear(be_, bind_weight(ctx, "o", qd, n_embd_, "(n_head * head_dim, n_embd)"), bind_bias(ctx, "o_bias", n_embd_));

  const size_t m = static_cast<size_t>(max_tokens_);
  qkv_ = layout_.add_words(m * qkv_width_);
  attn_ = layout_.add_words(m * qd);
  be_.workspace().reserve(layout_.bytes());
  be_.step_data().reserve(max_tokens_);
  be_.step_data().reserve_rope(rope_dim_, rope_base_);
  const uint32_t neox = rope_type_ == RopeType::NeoX ? 1u : 0u;
  rope_f32_ = &be_.kernels().get(ShaderId::RopeStore, {64, 0, neox});
  rope_f16_ = &be_.kernels().get(ShaderId::RopeStore, {64, 1, neox});
}

void Attention::check_kv(const KvLayer& kv, bool& f16) const {
  const Tensor* ts[2] = {&kv.k, &kv.v};
  for (int i = 0; i < 2; ++i) {
    const Tensor& t = *ts[i];
    const char* name = i ? "v" : "k";
    const bool shape_ok = t.ne[0] == hd_ && t.ne[1] == n_kv_ && t.ne[2] == kv.block_tokens && t.ne[3] >= 1 &&
                          kv.block_tokens > 0;
    if ((t.dtype != DType::F32 && t.dtype != DType::F16) || !shape_ok)
      throw Error(label_ + ": KV cache " + name + " must be F32 or F16 [" + std::to_string(hd_) + ", " +
                  std::to_string(n_kv_) + ", " + std::to_string(kv.block_tokens) + " (block_tokens), n_blocks], got " +
                  tensor_shape_string(t));
    be_.buffer_of(t, i ? "KV cache v" : "KV cache k", label_);
    const int64_t elt = dtype_block_bytes(t.dtype);
    if (t.nb[0] != elt || t.nb[1] < hd_ * elt || t.nb[2] < n_kv_ * t.nb[1] || t.nb[3] < kv.block_tokens * t.nb[2])
      throw Error(label_ + ": KV cache " + name + " " + tensor_shape_string(t) + " has overlapping strides");
    // F16 values are written in pairs, one 32-bit word each.
    if (t.nb[1] % 4 != 0 || t.nb[2] % 4 != 0 || t.nb[3] % 4 != 0 || t.offset % 4 != 0)
      throw Error(label_ + ": KV cache " + name + " " + tensor_shape_string(t) +
                  " needs strides and offset in whole 32-bit words");
    const double end = static_cast<double>(t.offset) + static_cast<double>(t.nb[3]) * static_cast<double>(t.ne[3]);
    if (end > static_cast<double>(t.buffer->size()))
      throw Error(label_ + ": KV cache " + name + " " + tensor_shape_string(t) + " reaches past its buffer");
  }
  if (kv.k.dtype != kv.v.dtype || kv.k.ne[3] != kv.v.ne[3] || kv.k.nb[1] != kv.v.nb[1] || kv.k.nb[2] != kv.v.nb[2] ||
      kv.k.nb[3] != kv.v.nb[3])
    throw Error(label_ + ": KV cache k " + tensor_shape_string(kv.k) + " and v " + tensor_shape_string(kv.v) +
                " differ in dtype or layout");
  f16 = kv.k.dtype == DType::F16;
}

int64_t Attention::check_positions(const Batch& b, const KvLayer& kv) const {
  const int32_t bt = kv.block_tokens;
  const int64_t n_blocks = kv.k.ne[3];
  int64_t longest = 0;
  int32_t run_seq = -1, checked = -1;  // block table entries [0, checked] of run_seq are known good
  for (int32_t t = 0; t < b.n_tokens; ++t) {
    const int32_t s = b.seq[t], pos = b.positions[t];
    auto tok = [&] { return label_ + ": batch token " + std::to_string(t); };  // only for messages
    if (s < 0 || s >= b.n_seqs)
      throw Error(tok() + " names sequence " + std::to_string(s) + " but the batch has " + std::to_string(b.n_seqs));
    if (pos < 0) throw Error(tok() + " has a negative position " + std::to_string(pos));
    const SeqView& sv = b.seqs[s];
    const int32_t need = pos / bt;
    if (need >= sv.n_blocks || !sv.blocks)
      throw Error(tok() + " at position " + std::to_string(pos) + " needs entry " + std::to_string(need) +
                  " of the block table of sequence " + std::to_string(s) + ", which has " +
                  std::to_string(sv.n_blocks) + " entries");
    if (s != run_seq) run_seq = s, checked = -1;
    for (int32_t i = checked + 1; i <= need; ++i)
      if (sv.blocks[i] < 0 || sv.blocks[i] >= n_blocks)
        throw Error(label_ + ": block table entry " + std::to_string(i) + " of sequence " + std::to_string(s) +
                    " is cache block " + std::to_string(sv.blocks[i]) + ", but the cache has " +
                    std::to_string(n_blocks) + " blocks");
    if (need > checked) checked = need;
    if (pos + 1 > longest) longest = pos + 1;
  }
  return longest;
}

Attention::AttnPush Attention::push_for(const Work& w) const {
  AttnPush p{};
  p.q_off = qkv_;
  p.q_row = u32(qkv_width_);
  p.a_off = attn_;
  p.t0 = 0;
  p.n_tokens = u32(w.batch.n_tokens);
  p.n_head = u32(n_head_);
  p.group = u32(group_);
  p.hd = u32(hd_);
  p.pos_off = w.view.positions;
  p.start_off = w.view.seq_start;
  p.tables_off = w.view.tables;
  p.bt = u32(w.block_tokens);
  p.kc_off = w.kc_off;
  p.vc_off = w.vc_off;
  p.nb1 = w.nb1;
  p.nb2 = w.nb2;
  p.nb3 = w.nb3;
  p.scale = scale_;
  return p;
}

void Attention::forward(const Tensor& in, const Tensor& out, const Step& step) {
  const Batch& b = step.batch;
  const int64_t m = b.n_tokens;
  if (m > max_tokens_)
    throw Error(label_ + ": batch of " + std::to_string(m) + " tokens exceeds max_batch_tokens " +
                std::to_string(max_tokens_));
  VulkanStream& s = be_.stream_of(step.stream);
  const DevRows x = activation(be_, in, n_embd_, m, "input", label_);
  const DevRows y = activation(be_, out, n_embd_, m, "output", label_);
  if (m == 0) return;
  if (!step.kv) throw Error(label_ + ": the step carries no KV cache for this layer");
  const KvLayer& kv = *step.kv;
  bool f16 = false;
  check_kv(kv, f16);
  kv_elt_ = f16 ? 2 : 4;
  prepare(check_positions(b, kv));

  StepData& sd = be_.step_data();
  const StepView& view = sd.upload(b);
  const GpuBuffer& rope = sd.rope(b, rope_dim_, rope_base_);
  const GpuBuffer& ws = be_.workspace().buffer();
  const int64_t qd = n_head_ * hd_, kd = n_kv_ * hd_;
  const uint32_t row = u32(qkv_width_), k_off = qkv_ + u32(qd), v_off = k_off + u32(kd);
  const DevRows attn{&ws, attn_, u32(qd)};
  if (fused_) {
    wqkv_.run(be_, x, DevRows{&ws, qkv_, row}, m, false);
  } else {  // each map writes its columns of the q | k | v rows the fused map writes whole
    s.begin_concurrent();
    wq_.run(be_, x, DevRows{&ws, qkv_, row}, m, false);
    wk_.run(be_, x, DevRows{&ws, k_off, row}, m, false);
    wv_.run(be_, x, DevRows{&ws, v_off, row}, m, false);
    s.end_concurrent();
  }

  const int64_t elt = kv_elt_;
  const Work w{b,
               view,
               sd.ints(),
               be_.buffer_of(kv.k, "KV cache k", label_).gpu(),
               be_.buffer_of(kv.v, "KV cache v", label_).gpu(),
               u32(static_cast<int64_t>(kv.k.offset) / elt),
               u32(static_cast<int64_t>(kv.v.offset) / elt),
               u32(kv.k.nb[1] / elt),
               u32(kv.k.nb[2] / elt),
               u32(kv.k.nb[3] / elt),
               kv.block_tokens,
               f16};
  const RopePush rp{qkv_,           k_off,       v_off,   row,      u32(m),  // the struct's lines, one each
                    u32(n_head_),   u32(n_kv_),  u32(hd_), u32(rope_dim_),
                    view.positions, view.seq_start, view.tables, u32(kv.block_tokens),
                    w.kc_off,       w.vc_off,    w.nb1,   w.nb2,
                    w.nb3};
  be_.dispatch(f16 ? *rope_f16_ : *rope_f32_, {&ws, &rope, &w.ints, &w.kc, &w.vc}, &rp, sizeof rp,
               static_cast<uint64_t>(m));
  core(w);
  wo_.run(be_, attn, y, m, true);
}

StageCost Attention::cost(const Batch& b) const {
  const double m = b.n_tokens, qd = static_cast<double>(n_head_ * hd_), kd = static_cast<double>(n_kv_ * hd_);
  double keys = 0;  // key positions attended to, summed over tokens
  for (int32_t t = 0; t < b.n_tokens; ++t) keys += b.positions[t] + 1.0;
  const double flops = 2.0 * m * n_embd_ * (2.0 * qd + 2.0 * kd) + 4.0 * keys * qd;
  const double bytes = wqkv_.bytes() + wq_.bytes() + wk_.bytes() + wv_.bytes() + wo_.bytes() + 2.0 * keys * kd * kv_elt_ +
                       m * (8.0 * n_embd_ + 2.0 * kd * kv_elt_);
  return {flops, bytes};
}

std::vector<std::string> attention_supports(const StageContext& ctx) {
  std::vector<std::string> why = stations::attention_supported(ctx, "vulkan");
  if (!ctx.hp) return why;
  const HParams& hp = *ctx.hp;
  const int64_t hd = hp.head_dim > 0 ? hp.head_dim : (hp.n_head > 0 ? hp.n_embd / hp.n_head : 0);
  if (hd % 2 != 0 || hd > kMaxHeadDim)
    why.push_back("head_dim " + std::to_string(hd) + " is odd or above " + std::to_string(kMaxHeadDim) +
                  ", the most the vulkan attention kernels hold");
  if (hp.sliding_window > 0)
    why.push_back("the model attends over a sliding window of " + std::to_string(hp.sliding_window) +
                  " positions; this variant attends to the whole context (attention/sliding_window and "
                  "block_sparse run on the cpu backend only)");
  return why;
}

}  // namespace semline::vk
