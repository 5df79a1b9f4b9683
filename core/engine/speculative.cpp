#include "core/engine/speculative.h"

#include <algorithm>

#include <semline/error.h>

namespace semline {

NgramProposer::NgramProposer(int32_t ngram_min, int32_t ngram_max) : min_(ngram_min), max_(ngram_max) {
  if (ngram_min < 1 || ngram_max < ngram_min)
    throw Error("speculative: ngram_min = " + std::to_string(ngram_min) + " and ngram_max = " +
                std::to_string(ngram_max) + ": expected 1 <= ngram_min <= ngram_max");
}

void NgramProposer::propose(std::span<const int32_t> tokens, int32_t k, std::vector<int32_t>& out) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int64_t len = std::min<int64_t>(max_, n - 1); len >= min_; --len) {
    const auto suffix = tokens.subspan(static_cast<size_t>(n - len));
    // The most recent earlier occurrence: its continuation is the likeliest to hold again.
    for (int64_t start = n - len - 1; start >= 0; --start) {
      if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + start)) continue;
      const int64_t from = start + len;
      const int64_t take = std::min<int64_t>(k, n - from);
      out.insert(out.end(), tokens.begin() + from, tokens.begin() + from + take);
      return;
    }
  }
}

const std::vector<std::string>& proposer_names() {
  static const std::vector<std::string> names = {"none", "ngram"};
  return names;
}

std::unique_ptr<Proposer> make_proposer(const SpeculativeOptions& opt) {
  if (opt.k < 1) throw Error("speculative: k = " + std::to_string(opt.k) + ": expected 1 or more draft tokens");
  if (opt.proposer == "none") return nullptr;
  if (opt.proposer == "ngram") return std::make_unique<NgramProposer>(opt.ngram_min, opt.ngram_max);
  throw Error("speculative: unknown proposer \"" + opt.proposer + "\"; expected none or ngram");
}

void DraftLength::update(int32_t drafted, int32_t accepted) {
  if (!adaptive_ || drafted == 0) return;
  if (accepted == drafted) k_ = std::min(max_, k_ + 1);
  else if (accepted == 0) k_ = std::max(1, k_ - 1);
}

}  // namespace semline
