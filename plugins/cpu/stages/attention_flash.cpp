// attention/flash: causal attention over key tiles with an online softmax (see
// attention_tiled.h); a query at position p meets every key 0..p.
#include <algorithm>

#include "stages/attention_tiled.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class AttentionFlash final : public TiledAttention {
 public:
  AttentionFlash(const StageContext& ctx, int64_t block) : TiledAttention(ctx, block) {}

 private:
  KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const override { return {p0, std::min(p1, pos + 1)}; }
};

}  // namespace

std::unique_ptr<Stage> make_attention_flash(const StageContext& ctx) {
  return std::make_unique<AttentionFlash>(ctx, int_param(ctx, "block", kDefaultBlock));
}

}  // namespace semline::cpu
