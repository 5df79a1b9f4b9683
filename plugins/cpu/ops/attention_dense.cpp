// attention/dense on the cpu, the reference: for each token and head, the full row of scores over
// positions 0..pos, a softmax, and the weighted sum of the values.
#include <cmath>
#include <cstring>

#include "ops/attention_cores.h"
#include "stations/stations.h"

namespace semline::cpu {

DenseCore::DenseCore(CpuBackend& be, const StageContext& ctx, const stations::AttentionShape& a,
                     const stations::CoreSpec& spec)
    : be_(be), n_head_(a.n_head), hd_(a.head_dim), group_(a.n_head / a.n_kv),
      scale_(spec.scale > 0 ? spec.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)))),
      softcap_(spec.softcap), scores_(spec.scratch_from) {
  // The context length is not known when a station is bound; start from the trained one and let
  // prepare() grow the rows if a step attends further (once per new longest context).
  const HParams& hp = stations::hparams_of(ctx);
  capacity_ = hp.n_ctx_train > 0 ? hp.n_ctx_train : 2048;
  be_.workspace().reserve(scores_ + scores_bytes());
}

void DenseCore::prepare(int64_t max_keys) {
  if (max_keys <= capacity_) return;
  while (capacity_ < max_keys) capacity_ *= 2;
  be_.workspace().reserve(scores_ + scores_bytes());
}

void DenseCore::run(const Step& step, const Tensor& q, const Tensor& attn) {
  const CoreStep w = core_step(be_, step, q, attn);
  const Kernels& kern = be_.kernels();
  const Batch& b = w.batch;
  be_.pool().run(b.n_tokens * n_head_, 4, [&](int64_t i0, int64_t i1, int worker) {
    float* sc = reinterpret_cast<float*>(w.scratch + scores_) + worker * (capacity_ + hd_);
    float* q8 = sc + capacity_;  // the scaled query rounded to 8 bits, where the keys are Q8_0
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / n_head_, h = i % n_head_, g = h / group_;
      const int32_t pos = b.positions[t];
      const SeqView& sv = b.seqs[b.seq[t]];
      const float* qr = w.q + t * w.q_stride + h * hd_;
      // Q8_0 keys meet the query as the tiled core's do: scaled, then rounded to 8 bits per block.
      if (w.k.dtype == DType::Q8_0) {
        for (int64_t d = 0; d < hd_; ++d) q8[d] = qr[d] * scale_;
        round_q8_blocks(q8, hd_);
      }
      for (int32_t p = 0; p <= pos; ++p) {
        const char* kr = w.k.row_at(sv, p, w.block_tokens, g);
        sc[p] = w.k.dtype == DType::Q8_0 ? kern.dot_q8_0(kr, q8, hd_)
                : scale_ * (w.k.dtype == DType::F16 ? kern.dot_f16(reinterpret_cast<const uint16_t*>(kr), qr, hd_)
                                                    : kern.dot_f32(reinterpret_cast<const float*>(kr), qr, hd_));
        if (softcap_ > 0) sc[p] = softcap_ * std::tanh(sc[p] / softcap_);
      }
      kern.softmax(sc, pos + 1);
      float* o = w.attn + t * w.attn_stride + h * hd_;
      std::memset(o, 0, static_cast<size_t>(hd_) * 4);
      for (int32_t p = 0; p <= pos; ++p) {
        const char* vr = w.v.row_at(sv, p, w.block_tokens, g);
        if (w.v.dtype == DType::Q8_0) kern.axpy_q8_0(sc[p], vr, o, hd_);
        else if (w.v.dtype == DType::F16) kern.axpy_f16(sc[p], reinterpret_cast<const uint16_t*>(vr), o, hd_);
        else kern.axpy_f32(sc[p], reinterpret_cast<const float*>(vr), o, hd_);
      }
    }
  });
}

}  // namespace semline::cpu
