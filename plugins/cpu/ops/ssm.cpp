#include "ops/ssm.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <semline/error.h>

namespace semline::cpu {
namespace {

// conv transposed to [d_conv][channels] so a tap meets a run of channels with one stride.
struct CpuSsm final : stations::SsmWeights {
  std::vector<float> taps, conv_bias, a, d, dt_bias;
};

float* rows_of(const Tensor& t) { return static_cast<float*>(t.host); }
int64_t stride_of(const Tensor& t) { return t.nb[1] / 4; }
float silu(float v) { return v / (1.0f + std::exp(-v)); }
float softplus(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }

constexpr int64_t kChannelGrain = 64;

class SsmKernels final : public stations::SsmKernels {
 public:
  explicit SsmKernels(CpuBackend& be) : be_(be) {}

  std::unique_ptr<stations::SsmWeights> bind_ssm(const std::string&, const stations::SsmShape& s,
                                                 stations::SsmConstants c) override {
    auto w = std::make_unique<CpuSsm>();
    w->shape = s;
    const int64_t ch = s.conv_channels();
    w->taps.resize(c.conv.size());
    for (int64_t i = 0; i < ch; ++i)
      for (int64_t k = 0; k < s.d_conv; ++k) w->taps[k * ch + i] = c.conv[i * s.d_conv + k];
    w->conv_bias = std::move(c.conv_bias);
    w->a = std::move(c.a);
    w->d = std::move(c.d);
    w->dt_bias = std::move(c.dt_bias);
    zeros_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(zeros_.size()), ch)), 0.0f);
    return w;
  }

  void ssm_conv(const Step& step, const stations::SsmWeights& sw, const Tensor& u, const Tensor& out) override {
    const CpuSsm& w = static_cast<const CpuSsm&>(sw);
    const int64_t di = w.shape.conv_channels(), taps = w.shape.d_conv, keep = taps - 1;
    group_rows(step.batch);
    const Tensor& pool = step.state->pools[0];
    const float* up = rows_of(u);
    float* op = rows_of(out);
    const int64_t us = stride_of(u), os = stride_of(out);
    be_.pool().run(di, kChannelGrain, [&](int64_t c0, int64_t c1, int) {
      std::vector<const float*> src(static_cast<size_t>(taps));
      for (int32_t s = 0; s < step.batch.n_seqs; ++s) {
        const SeqView& v = step.batch.seqs[s];
        float* state = rows_of(pool) + v.slot * stride_of(pool);  // [keep][di], oldest first
        const bool fresh = v.n_past == 0;
        const int32_t* rows = rows_.data() + start_[s];
        const int64_t n = start_[s + 1] - start_[s];
        for (int64_t j = 0; j < n; ++j) {
          // Input j - keep + k: an earlier row of this step, or the state before it.
          for (int64_t k = 0; k < taps; ++k) {
            const int64_t at = j - keep + k;
            src[k] = at >= 0 ? up + rows[at] * us : fresh ? zeros_.data() : state + (keep + at) * di;
          }
          float* y = op + rows[j] * os;
          for (int64_t c = c0; c < c1; ++c) y[c] = w.conv_bias[c];
          for (int64_t k = 0; k < taps; ++k) {
            const float* t = w.taps.data() + k * di;
            const float* x = src[k];
            for (int64_t c = c0; c < c1; ++c) y[c] += t[c] * x[c];
          }
          for (int64_t c = c0; c < c1; ++c) y[c] = silu(y[c]);
        }
        // The state keeps the last `keep` inputs; shifting down in place reads only higher rows.
        for (int64_t k = 0; k < keep; ++k) {
          const int64_t at = n - keep + k;
          const float* from = at >= 0 ? up + rows[at] * us : fresh ? zeros_.data() : state + (keep + at) * di;
          std::memmove(state + k * di + c0, from + c0, static_cast<size_t>(c1 - c0) * 4);
        }
      }
    });
  }

  void ssm_scan(const Step& step, const stations::SsmWeights& sw, const Tensor& x, const Tensor& dt, const Tensor& b,
                const Tensor& cm, const Tensor& z, const Tensor& y) override {
    const CpuSsm& w = static_cast<const CpuSsm&>(sw);
    const stations::SsmShape& sh = w.shape;
    const int64_t ds = sh.d_state;
    // Work in heads (Mamba-1: a head is one channel) so a worker owns whole heads.
    const int64_t heads = sh.n_head > 0 ? sh.n_head : sh.d_inner, width = sh.d_inner / heads;
    const int64_t per_group = heads / sh.n_group;
    group_rows(step.batch);
    const Tensor& pool = step.state->pools[1];
    be_.pool().run(heads, std::max<int64_t>(1, kChannelGrain / width), [&](int64_t e0, int64_t e1, int) {
      for (int32_t s = 0; s < step.batch.n_seqs; ++s) {
        const SeqView& v = step.batch.seqs[s];
        float* h = rows_of(pool) + v.slot * stride_of(pool);  // [d_inner][d_state]
        if (v.n_past == 0) std::memset(h + e0 * width * ds, 0, static_cast<size_t>((e1 - e0) * width * ds) * 4);
        for (int64_t j = start_[s]; j < start_[s + 1]; ++j) {
          const int64_t r = rows_[j];
          const float* xr = rows_of(x) + r * stride_of(x);
          const float* dr = rows_of(dt) + r * stride_of(dt);
          const float* br = rows_of(b) + r * stride_of(b);
          const float* cr = rows_of(cm) + r * stride_of(cm);
          const float* zr = rows_of(z) + r * stride_of(z);
          float* yr = rows_of(y) + r * stride_of(y);
          for (int64_t e = e0; e < e1; ++e) {
            const float delta = softplus(w.dt_bias.empty() ? dr[e] : dr[e] + w.dt_bias[e]);
            const int64_t g = e / per_group;
            const float* bg = br + g * ds;
            const float* cg = cr + g * ds;
            const float decay = sh.n_head > 0 ? std::exp(delta * w.a[e]) : 0.0f;  // Mamba-2: one per head
            for (int64_t c = e * width; c < (e + 1) * width; ++c) {
              const float dx = delta * xr[c];
              float* hc = h + c * ds;
              float acc = 0;
              if (sh.n_head > 0) {
                for (int64_t n = 0; n < ds; ++n) {
                  hc[n] = hc[n] * decay + bg[n] * dx;
                  acc += hc[n] * cg[n];
                }
              } else {
                const float* a = w.a.data() + c * ds;
                for (int64_t n = 0; n < ds; ++n) {
                  hc[n] = hc[n] * std::exp(delta * a[n]) + bg[n] * dx;
                  acc += hc[n] * cg[n];
                }
              }
              yr[c] = (acc + w.d[c] * xr[c]) * silu(zr[c]);
            }
          }
        }
      }
    });
  }

 private:
  // The step's rows grouped by sequence, each sequence's in row order (its positions' order: the
  // line checks a recurrent step's tokens come in order).
  void group_rows(const Batch& b) {
    start_.assign(static_cast<size_t>(b.n_seqs) + 1, 0);
    for (int32_t t = 0; t < b.n_tokens; ++t) ++start_[b.seq[t] + 1];
    for (int32_t s = 0; s < b.n_seqs; ++s) start_[s + 1] += start_[s];
    next_.assign(start_.begin(), start_.end() - 1);
    rows_.resize(static_cast<size_t>(b.n_tokens));
    for (int32_t t = 0; t < b.n_tokens; ++t) rows_[next_[b.seq[t]]++] = t;
  }

  CpuBackend& be_;
  std::vector<float> zeros_;  // a convolution row of zeros: the inputs before a new sequence
  std::vector<int32_t> start_, next_, rows_;
};

}  // namespace

std::unique_ptr<stations::SsmKernels> make_ssm_kernels(CpuBackend& be) { return std::make_unique<SsmKernels>(be); }

}  // namespace semline::cpu
