// attention/dense, the reference: for each token and head, the full row of scores over positions
// 0..pos, a softmax, and the weighted sum of the values.
#include <cstring>

#include "stages/attention.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class AttentionDense final : public Attention {
 public:
  explicit AttentionDense(const StageContext& ctx) : Attention(ctx) {
    scores_ = layout_.total();
    // The context length is not known when a stage is built; start from the trained one and let
    // prepare() grow the rows if a step attends further (once per new longest context).
    const HParams& hp = hparams_of(ctx);
    capacity_ = hp.n_ctx_train > 0 ? hp.n_ctx_train : 2048;
    be_.workspace().reserve(scores_ + scores_bytes());
  }

 private:
  size_t scores_bytes() const { return static_cast<size_t>(be_.host_threads() * capacity_) * 4; }

  void prepare(int64_t max_keys) override {
    if (max_keys <= capacity_) return;
    while (capacity_ < max_keys) capacity_ *= 2;
    be_.workspace().reserve(scores_ + scores_bytes());
  }

  void core(const Work& w) override {
    const Kernels& kern = be_.kernels();
    const Batch& b = w.batch;
    const int64_t qd = n_head_ * hd_;
    be_.pool().run(b.n_tokens * n_head_, 4, [&](int64_t i0, int64_t i1, int worker) {
      float* sc = reinterpret_cast<float*>(w.scratch + scores_) + worker * capacity_;
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = i / n_head_, h = i % n_head_, g = h / group_;
        const int32_t pos = b.positions[t];
        const SeqView& sv = b.seqs[b.seq[t]];
        const float* q = w.q + t * w.q_stride + h * hd_;
        for (int32_t p = 0; p <= pos; ++p) {
          const char* kr = cache_row(w.k, sv, p, w.block_tokens, g);
          sc[p] = scale_ * (w.k.f16 ? kern.dot_f16(reinterpret_cast<const uint16_t*>(kr), q, hd_)
                                    : kern.dot_f32(reinterpret_cast<const float*>(kr), q, hd_));
        }
        kern.softmax(sc, pos + 1);
        float* o = w.attn + t * qd + h * hd_;
        std::memset(o, 0, static_cast<size_t>(hd_) * 4);
        for (int32_t p = 0; p <= pos; ++p) {
          const char* vr = cache_row(w.v, sv, p, w.block_tokens, g);
          if (w.v.f16) kern.axpy_f16(sc[p], reinterpret_cast<const uint16_t*>(vr), o, hd_);
          else kern.axpy_f32(sc[p], reinterpret_cast<const float*>(vr), o, hd_);
        }
      }
    });
  }

  size_t scores_ = 0;     // per worker: [capacity] floats
  int64_t capacity_ = 0;  // longest score row the scratch holds
};

}  // namespace

std::unique_ptr<Stage> make_attention_dense(const StageContext& ctx) {
  return std::make_unique<AttentionDense>(ctx);
}

}  // namespace semline::cpu
