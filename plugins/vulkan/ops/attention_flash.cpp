// attention/flash on vulkan (attention_cores.h): nothing per key reaches device memory but the
// keys and values themselves.
#include <semline/error.h>

#include "backend/step_data.h"
#include "backend/workspace.h"
#include "ops/attention_cores.h"
#include "ops/common.h"

namespace semline::vk {

FlashCore::FlashCore(VulkanBackend& be, const StageContext& ctx, const stations::AttentionShape& a,
                     const stations::CoreSpec& spec)
    : be_(be), a_(a), spec_(spec) {
  if (spec.tile < 1 || spec.tile > kMaxFlashTile)
    throw Error(station_label(ctx) + ": block " + std::to_string(spec.tile) + " is outside 1.." + std::to_string(kMaxFlashTile));
  const uint32_t tile = static_cast<uint32_t>(spec.tile);
  for (uint32_t t = 0; t < kKvTypes; ++t) flash_[t] = &be_.kernels().get(ShaderId::AttnFlash, {kAttentionWorkgroup, t, tile});
}

void FlashCore::run(const Step& step, const Tensor& q, const Tensor& attn) {
  const KvView kv = kv_view(be_, *step.kv);
  const AttnPush p = attn_push(be_, step, a_, spec_, q, attn, kv);
  be_.dispatch(*flash_[kv.type], {&be_.workspace().buffer(), &be_.step_data().ints(), kv.k, kv.v},
               &p, sizeof p, static_cast<uint64_t>(step.batch.n_tokens) * a_.n_head);
}

}  // namespace semline::vk
