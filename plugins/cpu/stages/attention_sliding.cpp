// attention/sliding_window: a query at position p attends to the keys (p - W, p], the W most
// recent positions with its own included: llama.cpp's rule for Mistral's
// llama.attention.sliding_window (a key k is masked when p - k >= W). W is the `window`
// parameter, or the model's when that is 0. With the model's window the variant is exact; a
// window on a model trained without one approximates dense attention (equal to it while the
// context fits in the window).
#include <algorithm>

#include <semline/error.h>

#include "stages/attention_tiled.h"
#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class AttentionSliding final : public TiledAttention {
 public:
  AttentionSliding(const StageContext& ctx, int64_t window, int64_t block)
      : TiledAttention(ctx, block), window_(static_cast<int32_t>(window)) {}

  int32_t kv_window() const override { return window_; }

 private:
  int32_t first_key(int32_t pos) const override { return pos >= window_ ? pos - window_ + 1 : 0; }
  KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const override {
    return {std::max(p0, first_key(pos)), std::min(p1, pos + 1)};
  }

  int32_t window_;
};

}  // namespace

std::vector<std::string> sliding_window_supports(const StageContext& ctx) {
  std::vector<std::string> why = attention_basics_supported(ctx);
  if (ctx.hp && ctx.hp->sliding_window == 0 && int_param(ctx, "window", 0) == 0)
    why.push_back("the model has no sliding window (llama.attention.sliding_window) and the config sets no window");
  return why;
}

std::unique_ptr<Stage> make_attention_sliding(const StageContext& ctx) {
  const HParams& hp = hparams_of(ctx);
  const int64_t given = int_param(ctx, "window", 0);
  const int64_t window = given > 0 ? given : hp.sliding_window;
  if (window < 1 || window > INT32_MAX)
    throw Error(station_label(ctx) + ": window " + std::to_string(window) +
                " must be 1.." + std::to_string(INT32_MAX) +
                " (set stages.attention.window, or use a model with llama.attention.sliding_window)");
  if (ctx.log && window != hp.sliding_window)
    ctx.log(LogLevel::Info, "window " + std::to_string(window) + " where the model has " +
                                (hp.sliding_window ? std::to_string(hp.sliding_window) : std::string("none")) +
                                ": an approximation of the model's attention");
  return std::make_unique<AttentionSliding>(ctx, window, int_param(ctx, "block", kDefaultBlock));
}

}  // namespace semline::cpu
