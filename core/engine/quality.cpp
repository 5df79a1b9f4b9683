#include "core/engine/quality.h"
#include "core/engine/generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <semline/error.h>

namespace semline {

double QualityResult::perplexity() const { return n_scored ? std::exp(nll / n_scored) : 0; }

namespace {

// log-softmax of one row, in double for the sums that follow.
void log_softmax(std::span<const float> logits, std::vector<double>& out) {
  out.resize(logits.size());
  double mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(l - mx);
  const double lse = mx + std::log(sum);
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - lse;
}

}  // namespace

QualityResult score_text(Pipeline& p, std::span<const int32_t> text, const QualityOptions& opt,
                         const QualityResult* reference) {
  QualityResult r;
  const int32_t bos = p.tokenizer().bos();
  const int64_t n_vocab = p.hp().n_vocab;
  const int32_t body = opt.window - (bos >= 0 ? 1 : 0);
  if (body < 2) throw Error("quality: the window must hold at least 2 tokens of text");
  std::vector<int32_t> window, rows;
  std::vector<double> lp;
  size_t ref_row = 0;
  for (int32_t w = 0; w < opt.max_windows; ++w) {
    const size_t start = static_cast<size_t>(w) * body;
    if (start + 2 > text.size()) break;
    window.clear();
    if (bos >= 0) window.push_back(bos);
    const size_t take = std::min<size_t>(body, text.size() - start);
    window.insert(window.end(), text.begin() + start, text.begin() + start + take);

    // Every position but the last predicts the next token of the window; the BOS prediction is
    // not scored (it predicts the window's first token from nothing).
    const int32_t seq_id = p.kv().new_sequence();
    const int32_t first_scored = bos >= 0 ? 1 : 0;
    for (size_t chunk = 0; chunk + 1 < window.size(); chunk += p.max_batch_tokens()) {
      const int32_t n = static_cast<int32_t>(std::min<size_t>(p.max_batch_tokens(), window.size() - 1 - chunk));
      rows.clear();
      for (int32_t i = 0; i < n; ++i)
        if (static_cast<int32_t>(chunk) + i >= first_scored) rows.push_back(i);
      const std::span<const float> logits =
          step_sequence(p, seq_id, std::span<const int32_t>(window).subspan(chunk, static_cast<size_t>(n)), rows);
      for (size_t k = 0; k < rows.size(); ++k) {
        const size_t at = chunk + rows[k];
        log_softmax(logits.subspan(k * n_vocab, n_vocab), lp);
        r.nll -= lp[window[at + 1]];
        const int64_t best = std::max_element(lp.begin(), lp.end()) - lp.begin();
        if (reference) {
          if ((ref_row + 1) * n_vocab > reference->logprobs.size())
            throw Error("quality: the reference scored fewer positions than this run");
          const float* ref = reference->logprobs.data() + ref_row * n_vocab;
          double kl = 0;
          int64_t ref_best = 0;
          for (int64_t v = 0; v < n_vocab; ++v) {
            kl += std::exp(static_cast<double>(ref[v])) * (ref[v] - lp[v]);
            if (ref[v] > ref[ref_best]) ref_best = v;
          }
          r.kl_sum += std::max(0.0, kl);
          r.top1_same += best == ref_best;
        } else {
          r.logprobs.insert(r.logprobs.end(), lp.begin(), lp.end());
          r.top1_same += 1;
        }
        ++ref_row;
        ++r.n_scored;
      }
    }
    p.kv().free_sequence(seq_id);
  }
  if (r.n_scored == 0) throw Error("quality: the text is too short to score (needs at least 2 tokens)");
  return r;
}

}  // namespace semline
