#include "ops/attention_cores.h"

#include <cmath>

#include "backend/step_data.h"
#include "ops/common.h"

namespace semline::vk {

KvView kv_view(const VulkanBackend& be, const KvLayer& kv) {
  // Byte offsets as value offsets: a Q8_0 block of 34 bytes holds 32 values.
  const int64_t bytes = dtype_block_bytes(kv.k.dtype), values = dtype_block_size(kv.k.dtype);
  auto at = [&](int64_t b) { return u32(b / bytes * values); };
  KvView v;
  v.k = &be.buffer_of(kv.k, "KV cache k").gpu();
  v.v = &be.buffer_of(kv.v, "KV cache v").gpu();
  v.k_off = at(static_cast<int64_t>(kv.k.offset));
  v.v_off = at(static_cast<int64_t>(kv.v.offset));
  v.nb1 = at(kv.k.nb[1]);
  v.nb2 = at(kv.k.nb[2]);
  v.nb3 = at(kv.k.nb[3]);
  v.type = kv.k.dtype == DType::F16 ? 1u : kv.k.dtype == DType::Q8_0 ? 2u : 0u;
  return v;
}

AttnPush attn_push(VulkanBackend& be, const Step& step, const stations::AttentionShape& a,
                   const stations::CoreSpec& spec, const Tensor& q, const Tensor& attn, const KvView& kv) {
  const StepView& view = be.step_data().upload(step.batch);
  AttnPush p{};
  p.q_off = u32(static_cast<int64_t>(q.offset / 4));
  p.q_row = u32(q.nb[1] / 4);
  p.a_off = u32(static_cast<int64_t>(attn.offset / 4));
  p.t0 = 0;
  p.n_tokens = u32(step.batch.n_tokens);
  p.n_head = u32(a.n_head);
  p.group = u32(a.n_head / a.n_kv);
  p.hd = u32(a.head_dim);
  p.pos_off = view.positions;
  p.start_off = view.seq_start;
  p.tables_off = view.tables;
  p.bt = u32(step.kv->block_tokens);
  p.kc_off = kv.k_off;
  p.vc_off = kv.v_off;
  p.nb1 = kv.nb1;
  p.nb2 = kv.nb2;
  p.nb3 = kv.nb3;
  p.scale = spec.scale > 0 ? spec.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)));
  p.softcap = spec.softcap;
  p.window = static_cast<uint32_t>(spec.mask->window());
  return p;
}

}  // namespace semline::vk
