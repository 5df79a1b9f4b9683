// attention/dense, the reference: for each token and head the full row of scores over
// positions 0..pos is written to scratch, then its softmax and the weighted sum of the values.
// Score rows take tokens x heads x the longest key range; steps whose rows would not fit the
// scratch budget (param scores_mib) run in several dispatches of fewer tokens.
#include <algorithm>

#include <semline/error.h>

#include "stages/attention.h"
#include "stages/stages.h"

namespace semline::vk {
namespace {

class AttentionDense final : public Attention {
 public:
  explicit AttentionDense(const StageContext& ctx) : Attention(ctx) {
    const int64_t mib = ctx.params.values.count("scores_mib") ? ctx.params.get_int("scores_mib") : 32;
    if (mib < 1 || mib > 4096) throw Error(label_ + ": scores_mib " + std::to_string(mib) + " is outside 1..4096");
    budget_ = mib << 20;
    scores_ = static_cast<uint32_t>(layout_.bytes() / 4);
    grow_rows(256);
    dense_f32_ = &be_.kernels().get(ShaderId::AttnDense, {kWg, 0});
    dense_f16_ = &be_.kernels().get(ShaderId::AttnDense, {kWg, 1});
  }

 private:
  static constexpr uint32_t kWg = 128;

  // Score rows of `cap` keys for as many tokens as fit the budget (all of a step when they do).
  void grow_rows(int64_t cap) {
    cap_ = cap;
    const int64_t per_token = n_head_ * cap_ * 4;
    chunk_ = std::clamp<int64_t>(budget_ / per_token, 1, max_tokens_);
    be_.workspace().reserve(static_cast<size_t>(scores_) * 4 + static_cast<size_t>(chunk_ * per_token));
  }

  void prepare(int64_t max_keys) override {
    if (max_keys <= cap_) return;
    int64_t cap = cap_;
    while (cap < max_keys) cap *= 2;
    grow_rows(cap);
  }

  void core(const Work& w) override {
    AttnPush p = push_for(w);
    p.s_off = scores_;
    p.cap = static_cast<uint32_t>(cap_);
    const GpuBuffer& ws = be_.workspace().buffer();
    const Kernel& k = w.f16 ? *dense_f16_ : *dense_f32_;
    for (int64_t t0 = 0; t0 < w.batch.n_tokens; t0 += chunk_) {
      p.t0 = static_cast<uint32_t>(t0);
      p.n_tokens = static_cast<uint32_t>(std::min<int64_t>(chunk_, w.batch.n_tokens - t0));
      be_.dispatch(k, {&ws, &w.ints, &w.kc, &w.vc}, &p, sizeof p, static_cast<uint64_t>(p.n_tokens) * n_head_);
    }
  }

  int64_t budget_ = 0;   // bytes of score rows per dispatch
  uint32_t scores_ = 0;  // word offset of the score rows in scratch
  int64_t cap_ = 0;      // keys per score row
  int64_t chunk_ = 1;    // tokens per dispatch
  const Kernel* dense_f32_ = nullptr;
  const Kernel* dense_f16_ = nullptr;
};

}  // namespace

std::unique_ptr<Stage> make_attention_dense(const StageContext& ctx) { return std::make_unique<AttentionDense>(ctx); }

}  // namespace semline::vk
