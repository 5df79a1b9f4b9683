// Quality of a line on a text: perplexity, and how far its next-token distributions are from a
// reference line's (mean KL divergence, top-1 agreement). The A/B bench runs every variant through
// the same windows of the same tokens.
#pragma once

#include <span>
#include <vector>

#include "core/engine/pipeline.h"

namespace semline {

struct QualityOptions {
  int32_t window = 256;  // tokens per window; each starts with BOS (when the vocabulary has one)
  int32_t max_windows = 8;
};

struct QualityResult {
  int64_t n_scored = 0;       // predictions scored
  double nll = 0;             // summed negative log-likelihood of the actual next tokens (nats)
  double kl_sum = 0;          // summed KL(reference || this) over the scored positions
  int64_t top1_same = 0;      // positions whose most likely token equals the reference's
  std::vector<float> logprobs;  // kept for a reference run: [n_scored][n_vocab]

  double perplexity() const;
  double mean_kl() const { return n_scored ? kl_sum / n_scored : 0; }
  double top1() const { return n_scored ? static_cast<double>(top1_same) / n_scored : 0; }
};

// Scores `text` (token ids, no BOS) in windows. With `reference` null the log-probabilities are
// kept (for later comparisons); otherwise KL and top-1 are measured against it.
QualityResult score_text(Pipeline& p, std::span<const int32_t> text, const QualityOptions& opt,
                         const QualityResult* reference = nullptr);

}  // namespace semline
