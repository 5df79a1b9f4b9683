// attention/dense on vulkan (attention_cores.h).
#include <algorithm>

#include <semline/error.h>

#include "backend/step_data.h"
#include "backend/workspace.h"
#include "ops/attention_cores.h"
#include "ops/common.h"

namespace semline::vk {

DenseCore::DenseCore(VulkanBackend& be, const StageContext& ctx, const stations::AttentionShape& a,
                     const stations::CoreSpec& spec)
    : be_(be), a_(a), spec_(spec), max_tokens_(spec.max_tokens) {
  const int64_t mib = stations::int_param(ctx, "scores_mib", 32);
  if (mib < 1 || mib > 4096) throw Error(station_label(ctx) + ": scores_mib " + std::to_string(mib) + " is outside 1..4096");
  budget_ = mib << 20;
  scores_ = (spec.scratch_from + 63) / 64 * 64;
  grow_rows(256);
  for (uint32_t t = 0; t < kKvTypes; ++t) dense_[t] = &be_.kernels().get(ShaderId::AttnDense, {kAttentionWorkgroup, t});
}

void DenseCore::grow_rows(int64_t cap) {
  cap_ = cap;
  const int64_t per_token = a_.n_head * cap_ * 4;
  chunk_ = std::clamp<int64_t>(budget_ / per_token, 1, max_tokens_);
  be_.workspace().reserve(scores_ + static_cast<size_t>(chunk_ * per_token));
}

void DenseCore::prepare(int64_t max_keys) {
  if (max_keys <= cap_) return;
  int64_t cap = cap_;
  while (cap < max_keys) cap *= 2;
  grow_rows(cap);
}

void DenseCore::run(const Step& step, const Tensor& q, const Tensor& attn) {
  const KvView kv = kv_view(be_, *step.kv);
  AttnPush p = attn_push(be_, step, a_, spec_, q, attn, kv);
  p.s_off = static_cast<uint32_t>(scores_ / 4);
  p.cap = static_cast<uint32_t>(cap_);
  const GpuBuffer& ws = be_.workspace().buffer();
  const GpuBuffer& ints = be_.step_data().ints();
  const Kernel& k = *dense_[kv.type];
  for (int64_t t0 = 0; t0 < step.batch.n_tokens; t0 += chunk_) {
    p.t0 = static_cast<uint32_t>(t0);
    p.n_tokens = static_cast<uint32_t>(std::min<int64_t>(chunk_, step.batch.n_tokens - t0));
    be_.dispatch(k, {&ws, &ints, kv.k, kv.v}, &p, sizeof p, static_cast<uint64_t>(p.n_tokens) * a_.n_head);
  }
}

}  // namespace semline::vk
