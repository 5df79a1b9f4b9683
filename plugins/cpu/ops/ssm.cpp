#include "ops/ssm.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <semline/error.h>

namespace semline::cpu {
namespace {

// conv transposed to [d_conv][d_inner] so a tap meets a run of channels with one stride.
struct CpuSsm final : stations::SsmWeights {
  std::vector<float> taps, conv_bias, a, d;  // a [d_inner][d_state]
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
                                                 std::vector<float> conv, std::vector<float> conv_bias,
                                                 std::vector<float> a, std::vector<float> d) override {
    auto w = std::make_unique<CpuSsm>();
    w->shape = s;
    w->taps.resize(conv.size());
    for (int64_t c = 0; c < s.d_inner; ++c)
      for (int64_t k = 0; k < s.d_conv; ++k) w->taps[k * s.d_inner + c] = conv[c * s.d_conv + k];
    w->conv_bias = std::move(conv_bias);
    w->a = std::move(a);
    w->d = std::move(d);
    zeros_.assign(static_cast<size_t>(std::max<int64_t>(zeros_.size(), s.d_inner)), 0.0f);
    return w;
  }

  void ssm_conv(const Step& step, const stations::SsmWeights& sw, const Tensor& u, const Tensor& out) override {
    const CpuSsm& w = static_cast<const CpuSsm&>(sw);
    const int64_t di = w.shape.d_inner, taps = w.shape.d_conv, keep = taps - 1;
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
    const int64_t di = w.shape.d_inner, ds = w.shape.d_state;
    group_rows(step.batch);
    const Tensor& pool = step.state->pools[1];
    be_.pool().run(di, kChannelGrain, [&](int64_t c0, int64_t c1, int) {
      for (int32_t s = 0; s < step.batch.n_seqs; ++s) {
        const SeqView& v = step.batch.seqs[s];
        float* h = rows_of(pool) + v.slot * stride_of(pool);  // [di][ds]
        if (v.n_past == 0) std::memset(h + c0 * ds, 0, static_cast<size_t>((c1 - c0) * ds) * 4);
        for (int64_t j = start_[s]; j < start_[s + 1]; ++j) {
          const int64_t r = rows_[j];
          const float* xr = rows_of(x) + r * stride_of(x);
          const float* dr = rows_of(dt) + r * stride_of(dt);
          const float* br = rows_of(b) + r * stride_of(b);
          const float* cr = rows_of(cm) + r * stride_of(cm);
          const float* zr = rows_of(z) + r * stride_of(z);
          float* yr = rows_of(y) + r * stride_of(y);
          for (int64_t c = c0; c < c1; ++c) {
            const float delta = softplus(dr[c]), dx = delta * xr[c];
            const float* a = w.a.data() + c * ds;
            float* hc = h + c * ds;
            float acc = 0;
            for (int64_t n = 0; n < ds; ++n) {
              hc[n] = hc[n] * std::exp(delta * a[n]) + br[n] * dx;
              acc += hc[n] * cr[n];
            }
            yr[c] = (acc + w.d[c] * xr[c]) * silu(zr[c]);
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
  std::vector<float> zeros_;  // d_inner zeros: the inputs before a new sequence
  std::vector<int32_t> start_, next_, rows_;
};

}  // namespace

std::unique_ptr<stations::SsmKernels> make_ssm_kernels(CpuBackend& be) { return std::make_unique<SsmKernels>(be); }

}  // namespace semline::cpu
