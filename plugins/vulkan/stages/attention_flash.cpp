// attention/flash: keys in tiles of `block` positions with an online softmax, each tile's scores
// in shared memory; nothing per key reaches device memory but the keys and values themselves.
#include <semline/error.h>

#include "stages/attention.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

class AttentionFlash final : public Attention {
 public:
  explicit AttentionFlash(const StageContext& ctx) : Attention(ctx) {
    const int64_t block = ctx.params.values.count("block") ? ctx.params.get_int("block") : 64;
    if (block < 1 || block > kMaxFlashTile)
      throw Error(label_ + ": block " + std::to_string(block) + " is outside 1.." + std::to_string(kMaxFlashTile));
    const uint32_t tile = static_cast<uint32_t>(block);
    flash_f32_ = &be_.kernels().get(ShaderId::AttnFlash, {kWg, 0, tile});
    flash_f16_ = &be_.kernels().get(ShaderId::AttnFlash, {kWg, 1, tile});
  }

 private:
  static constexpr uint32_t kWg = 128;

  void core(const Work& w) override {
    const AttnPush p = push_for(w);
    const GpuBuffer& ws = be_.workspace().buffer();
    be_.dispatch(w.f16 ? *flash_f16_ : *flash_f32_, {&ws, &w.ints, &w.kc, &w.vc}, &p, sizeof p,
                 static_cast<uint64_t>(w.batch.n_tokens) * n_head_);
  }

  const Kernel* flash_f32_ = nullptr;
  const Kernel* flash_f16_ = nullptr;
};

}  // namespace

std::unique_ptr<Stage> make_attention_flash(const StageContext& ctx) { return std::make_unique<AttentionFlash>(ctx); }

}  // namespace semline::vk
